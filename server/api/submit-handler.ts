import { Code, type HandlerContext } from "@connectrpc/connect";
import { SubmitRequestSchema, type SubmitRequest } from "../../gen/accord/v1/coordinator_pb.js";
import type { CreateResult } from "../store/index.js";
import { loadTransaction, replyWithState, requireMode, wrongStatus, type CommandDependencies, type RequestClaim, type RequestIds } from "./command-context.js";
import { errorWithReason, invalidArgument } from "./errors.js";
import { sagaRecords } from "./transaction-records.js";
import { requireGid } from "./validation.js";

const METHOD = "Submit";

/**
 * Submit: a SAGA is created with its steps and started at once; a PREPARED TCC, XA or MSG is
 * moved to SUBMITTED and its second phase (or its branches) run.
 */
export function createSubmitHandler(deps: CommandDependencies, requestIds: RequestIds) {
  const { store, engine, config } = deps;

  const submitSaga = async (request: SubmitRequest, gid: string, claim: RequestClaim | undefined, context: HandlerContext) => {
    const created = sagaRecords(request, gid, config.limits, deps.targets, config.engine);
    const { transaction } = created;
    // Run it here at once when the bulkhead has room; otherwise the poller claims it when due.
    const reserved = engine.reserve();
    if (reserved) {
      transaction.owner = engine.coordinatorId;
      transaction.leaseUntil = transaction.createdAt + config.engine.leaseMs;
      transaction.leaseGeneration = 1;
    }
    const requestOps = requestIds.ops(claim);
    let outcomes;
    try {
      outcomes = await store.write([...requestOps, { kind: "create", ...created }]);
    } catch (error) {
      if (reserved) engine.unreserve();
      throw error;
    }
    const outcome = outcomes.at(-1) as CreateResult;
    if (!outcome.created || requestIds.lostRace(outcomes, claim)) {
      if (reserved) engine.unreserve();
      if (!outcome.created && outcome.existing.contentHash !== transaction.contentHash) {
        throw errorWithReason(Code.AlreadyExists, "GID_CONFLICT", `gid "${gid}" already names a different transaction`, { gid });
      }
      return replyWithState(deps, gid, request.wait, context);
    }
    if (reserved) engine.runReserved(gid, created);
    return replyWithState(deps, gid, request.wait, context, created);
  };

  const submitPrepared = async (request: SubmitRequest, gid: string, claim: RequestClaim | undefined, context: HandlerContext) => {
    const found = await loadTransaction(store, gid);
    const tx = found.transaction;
    const mode = requireMode(request.mode, [tx.mode], `must be the mode given at Begin (${tx.mode.toUpperCase()})`);
    if (request.steps.length > 0) throw invalidArgument("steps", `give ${mode.toUpperCase()} branches at Begin or RegisterBranch, not at Submit`);
    if (tx.status === "submitted" || tx.status === "succeeded") return replyWithState(deps, gid, request.wait, context);
    if (tx.status !== "prepared") throw wrongStatus(gid, tx.status, "submitted");

    const reserved = engine.reserve();
    const now = Date.now();
    const outcomes = await store
      .write([
        ...requestIds.ops(claim),
        {
          kind: "transaction",
          gid,
          expect: { statuses: ["prepared"] },
          // Taking the lease from whoever holds it: a poller about to time it out loses its CAS.
          changes: reserved
            ? { status: "submitted", owner: engine.coordinatorId, leaseUntil: now + config.engine.leaseMs, nextAttemptAt: now, updatedAt: now }
            : { status: "submitted", owner: null, leaseUntil: null, nextAttemptAt: now, updatedAt: now },
        },
      ])
      .catch((error: unknown) => {
        if (reserved) engine.unreserve();
        throw error;
      });
    if (requestIds.lostRace(outcomes, claim)) {
      if (reserved) engine.unreserve();
      return replyWithState(deps, gid, request.wait, context);
    }
    if (outcomes.at(-1) !== true) {
      if (reserved) engine.unreserve();
      // Someone else moved it first (a timeout abort, a concurrent Submit): answer from what it is now.
      const now = await loadTransaction(store, gid);
      if (now.transaction.status === "submitted" || now.transaction.status === "succeeded") return replyWithState(deps, gid, request.wait, context);
      throw wrongStatus(gid, now.transaction.status, "submitted");
    }
    // The run reads the transaction again: a branch registered between our read and the CAS
    // must be confirmed too.
    if (reserved) engine.runReserved(gid);
    return replyWithState(deps, gid, request.wait, context);
  };

  return async function submit(request: SubmitRequest, context: HandlerContext) {
    const gid = requireGid(request.gid);
    const claim = requestIds.claim(context, METHOD, gid, SubmitRequestSchema, request);
    if (await requestIds.isReplay(claim)) return replyWithState(deps, gid, request.wait, context);
    const mode = requireMode(request.mode, ["saga", "tcc", "msg", "xa"], "must be MODE_SAGA, MODE_TCC, MODE_MSG or MODE_XA");
    return mode === "saga" ? submitSaga(request, gid, claim, context) : submitPrepared(request, gid, claim, context);
  };
}
