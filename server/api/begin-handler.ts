import { Code, type HandlerContext } from "@connectrpc/connect";
import { BeginRequestSchema, type BeginRequest } from "../../gen/accord/v1/coordinator_pb.js";
import type { BranchRecord, CreateResult } from "../store/index.js";
import { replyWithState, requireMode, type CommandDependencies, type RequestIds } from "./command-context.js";
import { errorWithReason, invalidArgument } from "./errors.js";
import { validateOptions } from "./options-validation.js";
import { effectivePolicy } from "../engine/policy.js";
import { contentHash, newTransactionRecord, requireTarget, stepBranches } from "./transaction-records.js";
import { requireGid } from "./validation.js";

const METHOD = "Begin";

/** Begin: a PREPARED TCC or XA (branches come with RegisterBranch) or MSG (branches given here). */
export function createBeginHandler(deps: CommandDependencies, requestIds: RequestIds) {
  const { store, config } = deps;
  return async function begin(request: BeginRequest, context: HandlerContext) {
    const gid = requireGid(request.gid);
    const claim = requestIds.claim(context, METHOD, gid, BeginRequestSchema, request);
    if (await requestIds.isReplay(claim)) return replyWithState(deps, gid, false, context);
    const mode = requireMode(request.mode, ["tcc", "xa", "msg"], "must be MODE_TCC, MODE_XA or MODE_MSG (a SAGA needs no Begin: Submit it with its steps)");
    validateOptions(request.options, config.engine);
    const now = Date.now();
    let branches: BranchRecord[] = [];
    if (mode === "msg") {
      requireTarget(request.queryPrepared, "query_prepared", deps.targets);
      branches = stepBranches(gid, request.steps, request.options, { compensate: "forbidden", limits: config.limits, targets: deps.targets }, now);
    } else {
      if (request.steps.length > 0) throw invalidArgument("steps", `${mode.toUpperCase()} branches are added with RegisterBranch`);
      if (request.queryPrepared) throw invalidArgument("query_prepared", "is only for MODE_MSG");
    }
    if (request.options?.timeoutToFail) throw invalidArgument("options.timeout_to_fail", "is only for SAGA; use prepared_timeout");
    const transaction = newTransactionRecord({
      gid,
      mode,
      status: "prepared",
      options: request.options,
      queryPrepared: request.queryPrepared,
      contentHash: contentHash({ mode: request.mode, steps: request.steps, options: request.options }, request.queryPrepared),
      now,
      nextAttemptAt: now,
    });
    // Due when the prepared timeout passes: TCC/XA are aborted, MSG is back-checked.
    transaction.nextAttemptAt = now + effectivePolicy(transaction.options, config.engine).preparedTimeoutMs;
    const outcomes = await store.write([...requestIds.ops(claim), { kind: "create", transaction, branches }]);
    const outcome = outcomes.at(-1) as CreateResult;
    if (requestIds.lostRace(outcomes, claim)) return replyWithState(deps, gid, false, context);
    if (!outcome.created && outcome.existing.contentHash !== transaction.contentHash) {
      throw errorWithReason(Code.AlreadyExists, "GID_CONFLICT", `gid "${gid}" already names a different transaction`, { gid });
    }
    return replyWithState(deps, gid, false, context, outcome.created ? { transaction, branches } : undefined);
  };
}
