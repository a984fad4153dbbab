import { createHash } from "node:crypto";
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { TransactionOptionsSchema, type TransactionOptions } from "../../gen/accord/v1/transaction_pb.js";
import {
  AbortRequestSchema,
  BeginRequestSchema,
  RegisterBranchRequestSchema,
  SubmitRequestSchema,
  type CoordinatorService,
  type SubmitRequest,
} from "../../gen/accord/v1/coordinator_pb.js";
import type { AccordConfig } from "../config.js";
import type { Commands, CommandResult, RequestClaim } from "../engine/commands/index.js";
import type { Engine } from "../engine/engine.js";
import { normalizeTraceparent } from "../observe/tracing.js";
import { callerIdentity } from "../security/identity.js";
import type { Store } from "../store/index.js";
import { modes } from "./enum-mapping.js";
import { transactionNotFound } from "./errors.js";
import { toTransaction } from "./transaction-mapper.js";

export interface CommandHandlerDependencies {
  store: Store;
  engine: Engine;
  config: AccordConfig;
  commands: Commands;
}

/** Long identities are stored as a digest, so the key stays within the column. */
const callerScope = (identity: string | undefined) => {
  const caller = identity ?? "";
  return caller.length <= 128 ? caller : `sha256:${createHash("sha256").update(caller).digest("hex")}`;
};

/**
 * The request_id claim of a request: whose it is (the caller's certificate identity) and a digest
 * of what it asks — the request without its id and without how the caller wants the answer.
 */
function claimOf<S extends DescMessage>(
  context: HandlerContext,
  method: string,
  schema: S,
  request: MessageShape<S> & { requestId: string; gid: string },
): RequestClaim | undefined {
  const { requestId } = request;
  if (requestId === "") return undefined;
  const content = { ...request, requestId: "", ...("wait" in request ? { wait: false } : {}) } as MessageShape<S>;
  const fingerprint = createHash("sha256").update(method).update(toBinary(schema, content)).digest("hex");
  return { requestId, caller: callerScope(context.values.get(callerIdentity)), method, gid: request.gid, fingerprint };
}

/** What a retried Submit or Begin must repeat exactly to count as the same transaction. */
function contentHash(request: Pick<SubmitRequest, "mode" | "steps" | "options">, queryPrepared = ""): string {
  const canonical = create(SubmitRequestSchema, { mode: request.mode, steps: request.steps, options: request.options });
  return createHash("sha256").update(toBinary(SubmitRequestSchema, canonical)).update(queryPrepared).digest("hex");
}

/**
 * The options to store. A caller that traces its requests but set no `options.traceparent` has
 * the request's W3C `traceparent` header stored instead (an invalid one is ignored, as the spec
 * asks), so its branch calls join its trace. The header is in neither the content hash nor the
 * request digest: a retry carries a header of its own and is still the same request.
 */
function withTraceparent(options: TransactionOptions | undefined, context: HandlerContext): TransactionOptions | undefined {
  if (options?.traceparent) return options;
  const header = context.requestHeader.get("traceparent");
  const traceparent = header ? normalizeTraceparent(header) : undefined;
  if (!traceparent) return options;
  return options ? { ...options, traceparent } : create(TransactionOptionsSchema, { traceparent });
}

/**
 * The mutating CoordinatorService RPCs: each maps its request to an engine command and answers
 * with the transaction's state (once final, when the caller waits).
 */
export function createCommandHandlers(deps: CommandHandlerDependencies): Pick<ServiceImpl<typeof CoordinatorService>, "begin" | "submit" | "abort" | "registerBranch"> {
  const { commands } = deps;

  /**
   * How long a wait may last: the caller's deadline less a margin to answer in time. The margin
   * grows with the deadline (a fifth, up to a second), so a busy process still answers before
   * the caller gives up.
   */
  const waitBudgetMs = (context: HandlerContext) => {
    const left = context.timeoutMs();
    const max = deps.config.engine.maxWaitMs;
    return left === undefined ? max : Math.max(0, Math.min(max, left - Math.min(1000, left * 0.2)));
  };

  const reply = async ({ gid, state }: CommandResult, wait: boolean, context: HandlerContext) => {
    const found = wait ? await deps.engine.waitForFinal(gid, waitBudgetMs(context), context.signal, state) : (state ?? (await deps.store.getTransaction(gid)));
    if (!found) throw transactionNotFound(gid);
    return { transaction: toTransaction(found.transaction, found.branches) };
  };

  return {
    async begin(request, context) {
      const result = await commands.begin({
        gid: request.gid,
        mode: modes.fromProto(request.mode),
        steps: request.steps,
        options: withTraceparent(request.options, context),
        queryPrepared: request.queryPrepared,
        contentHash: contentHash(request, request.queryPrepared),
        claim: claimOf(context, "Begin", BeginRequestSchema, request),
      });
      return reply(result, false, context);
    },

    async submit(request, context) {
      const result = await commands.submit({
        gid: request.gid,
        mode: modes.fromProto(request.mode),
        steps: request.steps,
        options: withTraceparent(request.options, context),
        contentHash: contentHash(request),
        claim: claimOf(context, "Submit", SubmitRequestSchema, request),
      });
      return reply(result, request.wait, context);
    },

    async abort(request, context) {
      const result = await commands.abort({ gid: request.gid, reason: request.reason, claim: claimOf(context, "Abort", AbortRequestSchema, request) });
      return reply(result, request.wait, context);
    },

    async registerBranch(request, context) {
      const result = await commands.registerBranch({
        gid: request.gid,
        branchId: request.branchId,
        commit: request.commit,
        rollback: request.rollback,
        payload: request.payload,
        claim: claimOf(context, "RegisterBranch", RegisterBranchRequestSchema, request),
      });
      return reply(result, false, context);
    },
  };
}
