import type { TransactionOptions } from "../../../gen/accord/v1/transaction_pb.js";
import type { BranchRecord, CreateResult, Mode } from "../../store/index.js";
import { effectivePolicy } from "../policy.js";
import { loadTransaction, requireMode, type CommandContext, type CommandResult } from "./context.js";
import { ConflictError, InvalidInputError } from "./errors.js";
import { requireGid } from "./identifiers.js";
import { validateOptions } from "./options.js";
import { newTransactionRecord, requireTarget, stepBranches, type StepInput } from "./records.js";
import type { RequestClaim } from "./request-ids.js";

export interface BeginInput {
  gid: string;
  mode: Mode | undefined;
  /** MSG only: its branches. */
  steps: readonly StepInput[];
  options: TransactionOptions | undefined;
  /** MSG only: where to ask whether the local transaction committed. */
  queryPrepared: string;
  /** Digest of what the caller asked for, to tell a retried Begin from a conflicting one. */
  contentHash: string;
  claim?: RequestClaim;
}

/** Begin: a PREPARED TCC or XA (branches come with RegisterBranch) or MSG (branches given here). */
export async function begin(ctx: CommandContext, input: BeginInput): Promise<CommandResult> {
  const { store, config, requestIds } = ctx;
  const gid = requireGid(input.gid);
  if (await requestIds.isReplay(input.claim)) return { gid };
  const mode = requireMode(input.mode, ["tcc", "xa", "msg"], "must be MODE_TCC, MODE_XA or MODE_MSG (a SAGA needs no Begin: Submit it with its steps)");
  validateOptions(input.options, config.engine);
  const now = Date.now();
  let branches: BranchRecord[] = [];
  if (mode === "msg") {
    requireTarget(input.queryPrepared, "query_prepared", ctx.targets);
    branches = stepBranches(gid, input.steps, input.options, { compensate: "forbidden", limits: config.limits, targets: ctx.targets }, now);
  } else {
    if (input.steps.length > 0) throw new InvalidInputError("steps", `${mode.toUpperCase()} branches are added with RegisterBranch`);
    if (input.queryPrepared) throw new InvalidInputError("query_prepared", "is only for MODE_MSG");
  }
  if (input.options?.timeoutToFail) throw new InvalidInputError("options.timeout_to_fail", "is only for SAGA; use prepared_timeout");
  const transaction = newTransactionRecord({ gid, mode, options: input.options, queryPrepared: input.queryPrepared, contentHash: input.contentHash, now, nextAttemptAt: now });
  // Due when the prepared timeout passes: TCC/XA are aborted, MSG is back-checked.
  transaction.nextAttemptAt = now + effectivePolicy(transaction.options, config.engine).preparedTimeoutMs;
  const outcomes = await store.write([...requestIds.ops(input.claim), { kind: "create", transaction, branches }]);
  const outcome = outcomes.at(-1) as CreateResult;
  if (requestIds.lostRace(outcomes, input.claim)) return { gid };
  if (!outcome.created && outcome.existing.contentHash !== transaction.contentHash) {
    throw new ConflictError("GID_CONFLICT", `gid "${gid}" already names a different transaction`, { gid });
  }
  return outcome.created ? { gid, state: { transaction, branches } } : { gid, state: await loadTransaction(store, gid) };
}
