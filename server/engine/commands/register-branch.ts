import type { BranchOp, BranchRecord } from "../../store/index.js";
import { loadTransaction, type CommandContext, type CommandResult } from "./context.js";
import { ConflictError, InvalidInputError, WrongStatusError } from "./errors.js";
import { requireBranchId, requireGid } from "./identifiers.js";
import { requireTarget } from "./records.js";
import type { RequestClaim } from "./request-ids.js";

export interface RegisterBranchInput {
  gid: string;
  branchId: string;
  /** Confirm (TCC) or commit (XA) target. */
  commit: string;
  /** Cancel (TCC) or rollback (XA) target. */
  rollback: string;
  payload: Uint8Array;
  claim?: RequestClaim;
}

const OPS: Record<"tcc" | "xa", [BranchOp, BranchOp]> = { tcc: ["confirm", "cancel"], xa: ["commit", "rollback"] };

/** RegisterBranch: add a TCC (confirm, cancel) or XA (commit, rollback) branch while PREPARED. */
export async function registerBranch(ctx: CommandContext, input: RegisterBranchInput): Promise<CommandResult> {
  const { store, config, requestIds } = ctx;
  const gid = requireGid(input.gid);
  const branchId = requireBranchId(input.branchId, "branch_id");
  requireTarget(input.commit, "commit", ctx.targets);
  requireTarget(input.rollback, "rollback", ctx.targets);
  if (input.payload.byteLength > config.limits.maxPayloadBytes) {
    throw new InvalidInputError("payload", `is ${input.payload.byteLength} bytes; at most ${config.limits.maxPayloadBytes} are allowed`);
  }
  if (await requestIds.isReplay(input.claim)) return { gid };
  const found = await loadTransaction(store, gid);
  const tx = found.transaction;
  if (tx.mode !== "tcc" && tx.mode !== "xa") throw new InvalidInputError("gid", `names a ${tx.mode.toUpperCase()} transaction; only TCC and XA register branches`);
  const [commitOp, rollbackOp] = OPS[tx.mode];

  /** The same registration again is a no-op (true); the id with other targets is a conflict. */
  const alreadyRegistered = (branches: BranchRecord[]): boolean => {
    const existing = branches.find((b) => b.branchId === branchId && b.op === commitOp);
    if (!existing) return false;
    if (existing.target === input.commit && Buffer.from(existing.payload).equals(Buffer.from(input.payload))) return true;
    throw new ConflictError("BRANCH_EXISTS", `branch "${branchId}" is already registered in "${gid}" with other targets`, { gid, branchId });
  };
  if (alreadyRegistered(found.branches)) return { gid, state: found };
  if (tx.status !== "prepared") throw new WrongStatusError(gid, tx.status, "given new branches");
  if (found.branches.length / 2 >= config.limits.maxBranches) throw new InvalidInputError("branch_id", `at most ${config.limits.maxBranches} branches are allowed`);

  const now = Date.now();
  const row = (op: BranchOp, target: string): BranchRecord => ({
    gid,
    branchId,
    op,
    seq: found.branches.length / 2,
    target,
    payload: input.payload,
    after: [],
    status: "pending",
    attempts: 0,
    lastError: "",
    updatedAt: now,
  });
  const outcomes = await store
    .write([...requestIds.ops(input.claim), { kind: "addBranches", gid, statuses: ["prepared"], branches: [row(commitOp, input.commit), row(rollbackOp, input.rollback)] }])
    .catch(async (error: unknown) => {
      // A concurrent registration of the same branch id won the insert: answer as a retry would.
      if (alreadyRegistered((await loadTransaction(store, gid)).branches)) return [true];
      throw error;
    });
  if (requestIds.lostRace(outcomes, input.claim)) return { gid };
  if (outcomes.at(-1) !== true) {
    const current = await loadTransaction(store, gid);
    throw new WrongStatusError(gid, current.transaction.status, "given new branches");
  }
  return { gid };
}
