import { Code, type HandlerContext } from "@connectrpc/connect";
import { RegisterBranchRequestSchema, type RegisterBranchRequest } from "../../gen/accord/v1/coordinator_pb.js";
import type { BranchOp, BranchRecord } from "../store/index.js";
import { loadTransaction, replyWithState, wrongStatus, type CommandDependencies, type RequestIds } from "./command-context.js";
import { errorWithReason, invalidArgument } from "./errors.js";
import { requireTarget } from "./transaction-records.js";
import { requireBranchId, requireGid } from "./validation.js";

const METHOD = "RegisterBranch";
const OPS: Record<"tcc" | "xa", [BranchOp, BranchOp]> = { tcc: ["confirm", "cancel"], xa: ["commit", "rollback"] };

/** RegisterBranch: add a TCC (confirm, cancel) or XA (commit, rollback) branch while PREPARED. */
export function createRegisterBranchHandler(deps: CommandDependencies, requestIds: RequestIds) {
  const { store, config } = deps;
  return async function registerBranch(request: RegisterBranchRequest, context: HandlerContext) {
    const gid = requireGid(request.gid);
    const branchId = requireBranchId(request.branchId, "branch_id");
    requireTarget(request.commit, "commit", deps.targets);
    requireTarget(request.rollback, "rollback", deps.targets);
    if (request.payload.byteLength > config.limits.maxPayloadBytes) {
      throw invalidArgument("payload", `is ${request.payload.byteLength} bytes; at most ${config.limits.maxPayloadBytes} are allowed`);
    }
    const claim = requestIds.claim(context, METHOD, gid, RegisterBranchRequestSchema, request);
    if (await requestIds.isReplay(claim)) return replyWithState(deps, gid, false, context);
    const found = await loadTransaction(store, gid);
    const tx = found.transaction;
    if (tx.mode !== "tcc" && tx.mode !== "xa") throw invalidArgument("gid", `names a ${tx.mode.toUpperCase()} transaction; only TCC and XA register branches`);
    const [commitOp, rollbackOp] = OPS[tx.mode];

    /** The same registration again is a no-op (true); the id with other targets is ALREADY_EXISTS. */
    const alreadyRegistered = (branches: BranchRecord[]): boolean => {
      const existing = branches.find((b) => b.branchId === branchId && b.op === commitOp);
      if (!existing) return false;
      if (existing.target === request.commit && Buffer.from(existing.payload).equals(Buffer.from(request.payload))) return true;
      throw errorWithReason(Code.AlreadyExists, "BRANCH_EXISTS", `branch "${branchId}" is already registered in "${gid}" with other targets`, { gid, branchId });
    };
    if (alreadyRegistered(found.branches)) return replyWithState(deps, gid, false, context, found);
    if (tx.status !== "prepared") throw wrongStatus(gid, tx.status, "given new branches");
    if (found.branches.length / 2 >= config.limits.maxBranches) throw invalidArgument("branch_id", `at most ${config.limits.maxBranches} branches are allowed`);

    const now = Date.now();
    const row = (op: BranchOp, target: string): BranchRecord => ({
      gid,
      branchId,
      op,
      seq: found.branches.length / 2,
      target,
      payload: request.payload,
      after: [],
      status: "pending",
      attempts: 0,
      lastError: "",
      updatedAt: now,
    });
    const outcomes = await store
      .write([
        ...requestIds.ops(claim),
        { kind: "addBranches", gid, statuses: ["prepared"], branches: [row(commitOp, request.commit), row(rollbackOp, request.rollback)] },
      ])
      .catch(async (error: unknown) => {
        // A concurrent registration of the same branch id won the insert: answer as a retry would.
        if (alreadyRegistered((await loadTransaction(store, gid)).branches)) return [true];
        throw error;
      });
    if (requestIds.lostRace(outcomes, claim)) return replyWithState(deps, gid, false, context);
    if (outcomes.at(-1) !== true) {
      const current = await loadTransaction(store, gid);
      throw wrongStatus(gid, current.transaction.status, "given new branches");
    }
    return replyWithState(deps, gid, false, context);
  };
}
