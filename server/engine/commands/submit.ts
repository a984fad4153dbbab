import type { TransactionOptions } from "../../../gen/accord/v1/transaction_pb.js";
import type { CreateResult, Mode, TransactionChanges } from "../../store/index.js";
import { transitionOp } from "../transitions.js";
import { loadTransaction, requireMode, type CommandContext, type CommandResult } from "./context.js";
import { ConflictError, InvalidInputError, WrongStatusError } from "./errors.js";
import { requireGid } from "./identifiers.js";
import { sagaRecords, type StepInput } from "./records.js";
import type { RequestClaim } from "./request-ids.js";

export interface SubmitInput {
  gid: string;
  mode: Mode | undefined;
  /** SAGA: its steps. TCC, XA and MSG got theirs at Begin / RegisterBranch. */
  steps: readonly StepInput[];
  options: TransactionOptions | undefined;
  /** SAGA: digest of what the caller asked for, to tell a retried Submit from a conflicting one. */
  contentHash: string;
  claim?: RequestClaim;
}

/**
 * Submit: a SAGA is created with its steps and started at once; a PREPARED TCC, XA or MSG is
 * moved to SUBMITTED and its second phase (or its branches) run.
 */
export async function submit(ctx: CommandContext, input: SubmitInput): Promise<CommandResult> {
  const gid = requireGid(input.gid);
  if (await ctx.requestIds.isReplay(input.claim)) return { gid };
  const mode = requireMode(input.mode, ["saga", "tcc", "msg", "xa"], "must be MODE_SAGA, MODE_TCC, MODE_MSG or MODE_XA");
  return mode === "saga" ? submitSaga(ctx, gid, input) : submitPrepared(ctx, gid, mode, input);
}

async function submitSaga(ctx: CommandContext, gid: string, input: SubmitInput): Promise<CommandResult> {
  const { store, engine, config, requestIds } = ctx;
  const created = sagaRecords({ ...input, gid }, config.limits, ctx.targets, config.engine);
  const { transaction } = created;
  // Run it here at once when the bulkhead has room; otherwise the poller claims it when due.
  const reserved = engine.reserve();
  if (reserved) engine.takeLeaseOnCreate(transaction);
  let outcomes;
  try {
    outcomes = await store.write([...requestIds.ops(input.claim), { kind: "create", ...created }]);
  } catch (error) {
    if (reserved) engine.unreserve();
    throw error;
  }
  const outcome = outcomes.at(-1) as CreateResult;
  if (!outcome.created || requestIds.lostRace(outcomes, input.claim)) {
    if (reserved) engine.unreserve();
    if (!outcome.created && outcome.existing.contentHash !== transaction.contentHash) {
      throw new ConflictError("GID_CONFLICT", `gid "${gid}" already names a different transaction`, { gid });
    }
    return { gid };
  }
  if (reserved) engine.runReserved(gid, created);
  return { gid, state: created };
}

async function submitPrepared(ctx: CommandContext, gid: string, mode: Mode, input: SubmitInput): Promise<CommandResult> {
  const { store, engine, requestIds } = ctx;
  const found = await loadTransaction(store, gid);
  const tx = found.transaction;
  requireMode(mode, [tx.mode], `must be the mode given at Begin (${tx.mode.toUpperCase()})`);
  if (input.steps.length > 0) throw new InvalidInputError("steps", `give ${mode.toUpperCase()} branches at Begin or RegisterBranch, not at Submit`);
  if (tx.status === "submitted" || tx.status === "succeeded") return { gid };
  if (tx.status !== "prepared") throw new WrongStatusError(gid, tx.status, "submitted");

  const reserved = engine.reserve();
  const now = Date.now();
  // Taking the lease from whoever holds it: a poller about to time it out loses its CAS.
  const lease: TransactionChanges = reserved ? engine.leaseChanges(now) : { owner: null, leaseUntil: null };
  const outcomes = await store
    .write([...requestIds.ops(input.claim), transitionOp(gid, tx.mode, "prepared", "submitted", { ...lease, nextAttemptAt: now, updatedAt: now })])
    .catch((error: unknown) => {
      if (reserved) engine.unreserve();
      throw error;
    });
  if (requestIds.lostRace(outcomes, input.claim)) {
    if (reserved) engine.unreserve();
    return { gid };
  }
  if (outcomes.at(-1) !== true) {
    if (reserved) engine.unreserve();
    // Someone else moved it first (a timeout abort, a concurrent Submit): answer from what it is now.
    const current = await loadTransaction(store, gid);
    if (current.transaction.status === "submitted" || current.transaction.status === "succeeded") return { gid, state: current };
    throw new WrongStatusError(gid, current.transaction.status, "submitted");
  }
  // The run reads the transaction again: a branch registered between our read and the CAS
  // must be confirmed too.
  if (reserved) engine.runReserved(gid);
  return { gid };
}
