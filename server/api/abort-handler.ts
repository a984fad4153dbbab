import type { HandlerContext } from "@connectrpc/connect";
import { AbortRequestSchema, type AbortRequest } from "../../gen/accord/v1/coordinator_pb.js";
import type { TransactionChanges } from "../store/index.js";
import { loadTransaction, replyWithState, wrongStatus, type CommandDependencies, type RequestIds } from "./command-context.js";
import { invalidArgument } from "./errors.js";
import { requireGid } from "./validation.js";

const METHOD = "Abort";

/** Abort: roll back a PREPARED TCC or XA (cancel/rollback every branch), or fail an unsubmitted MSG. */
export function createAbortHandler(deps: CommandDependencies, requestIds: RequestIds) {
  const { store, engine, config } = deps;
  return async function abort(request: AbortRequest, context: HandlerContext) {
    const gid = requireGid(request.gid);
    if (request.reason.length > 1024) throw invalidArgument("reason", "must be at most 1024 characters");
    const claim = requestIds.claim(context, METHOD, gid, AbortRequestSchema, request);
    if (await requestIds.isReplay(claim)) return replyWithState(deps, gid, request.wait, context);
    const { transaction: tx } = await loadTransaction(store, gid);
    if (tx.mode === "saga") throw invalidArgument("gid", "names a SAGA, which compensates on its own and cannot be aborted");
    if (tx.status === "aborting" || tx.status === "failed") return replyWithState(deps, gid, request.wait, context);
    if (tx.status !== "prepared") throw wrongStatus(gid, tx.status, "aborted");

    const now = Date.now();
    const reason = request.reason || "aborted by the application";
    // An MSG ran nothing before Submit: it ends at once. TCC and XA cancel their branches.
    const reserved = tx.mode !== "msg" && engine.reserve();
    const changes: TransactionChanges =
      tx.mode === "msg"
        ? { status: "failed", failureReason: reason, finishedAt: now, nextAttemptAt: null, owner: null, leaseUntil: null, updatedAt: now }
        : {
            status: "aborting",
            failureReason: reason,
            owner: reserved ? engine.coordinatorId : null,
            leaseUntil: reserved ? now + config.engine.leaseMs : null,
            nextAttemptAt: now,
            updatedAt: now,
          };
    const outcomes = await store
      .write([...requestIds.ops(claim), { kind: "transaction", gid, expect: { statuses: ["prepared"] }, changes }])
      .catch((error: unknown) => {
        if (reserved) engine.unreserve();
        throw error;
      });
    const moved = outcomes.at(-1) === true && !requestIds.lostRace(outcomes, claim);
    if (!moved) {
      if (reserved) engine.unreserve();
      const current = await loadTransaction(store, gid);
      if (current.transaction.status === "aborting" || current.transaction.status === "failed") return replyWithState(deps, gid, request.wait, context);
      throw wrongStatus(gid, current.transaction.status, "aborted");
    }
    engine.events.changed(gid);
    if (reserved) engine.runReserved(gid);
    return replyWithState(deps, gid, request.wait, context);
  };
}
