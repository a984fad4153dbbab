import type { TransactionChanges } from "../../store/index.js";
import { transitionOp } from "../transitions.js";
import { loadTransaction, type CommandContext, type CommandResult } from "./context.js";
import { InvalidInputError, WrongStatusError } from "./errors.js";
import { requireGid } from "./identifiers.js";
import type { RequestClaim } from "./request-ids.js";

export interface AbortInput {
  gid: string;
  /** Recorded as the failure reason; empty: "aborted by the application". */
  reason: string;
  claim?: RequestClaim;
}

/** Abort: roll back a PREPARED TCC or XA (cancel/rollback every branch), or fail an unsubmitted MSG. */
export async function abort(ctx: CommandContext, input: AbortInput): Promise<CommandResult> {
  const { store, engine, requestIds } = ctx;
  const gid = requireGid(input.gid);
  if (input.reason.length > 1024) throw new InvalidInputError("reason", "must be at most 1024 characters");
  if (await requestIds.isReplay(input.claim)) return { gid };
  const { transaction: tx } = await loadTransaction(store, gid);
  if (tx.mode === "saga") throw new InvalidInputError("gid", "names a SAGA, which compensates on its own and cannot be aborted");
  if (tx.status === "aborting" || tx.status === "failed") return { gid };
  if (tx.status !== "prepared") throw new WrongStatusError(gid, tx.status, "aborted");

  const now = Date.now();
  const failureReason = input.reason || "aborted by the application";
  // An MSG ran nothing before Submit: it ends at once. TCC and XA cancel their branches.
  const reserved = tx.mode !== "msg" && engine.reserve();
  const op =
    tx.mode === "msg"
      ? transitionOp(gid, tx.mode, "prepared", "failed", { failureReason, finishedAt: now, nextAttemptAt: null, owner: null, leaseUntil: null, updatedAt: now })
      : transitionOp(gid, tx.mode, "prepared", "aborting", {
          failureReason,
          ...(reserved ? engine.leaseChanges(now) : ({ owner: null, leaseUntil: null } satisfies TransactionChanges)),
          nextAttemptAt: now,
          updatedAt: now,
        });
  const outcomes = await store.write([...requestIds.ops(input.claim), op]).catch((error: unknown) => {
    if (reserved) engine.unreserve();
    throw error;
  });
  const moved = outcomes.at(-1) === true && !requestIds.lostRace(outcomes, input.claim);
  if (!moved) {
    if (reserved) engine.unreserve();
    const current = await loadTransaction(store, gid);
    if (current.transaction.status === "aborting" || current.transaction.status === "failed") return { gid, state: current };
    throw new WrongStatusError(gid, current.transaction.status, "aborted");
  }
  engine.events.changed(gid);
  if (tx.mode === "msg") engine.finishedByCommand(tx, "failed", now);
  if (reserved) engine.runReserved(gid);
  return { gid };
}
