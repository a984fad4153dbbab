import { createHash } from "node:crypto";
import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, type HandlerContext } from "@connectrpc/connect";
import type { Mode as ProtoMode } from "../../gen/accord/v1/transaction_pb.js";
import type { AccordConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import type { TargetPolicy } from "../security/target-policy.js";
import { callerIdentity } from "../security/identity.js";
import type { Mode, RequestRecord, Store, TransactionWithBranches, WriteOp, WriteOutcome } from "../store/index.js";
import { modes } from "./enum-mapping.js";
import { errorWithReason, invalidArgument, transactionNotFound } from "./errors.js";
import { toTransaction } from "./transaction-mapper.js";

/** What the mutating RPCs share. */
export interface CommandDependencies {
  store: Store;
  engine: Engine;
  config: AccordConfig;
  /** Where branch targets may point. */
  targets: TargetPolicy;
}

/** How long a wait may last: the caller's deadline less a margin to answer in time. */
function waitBudgetMs(context: HandlerContext, maxWaitMs: number): number {
  const left = context.timeoutMs();
  if (left === undefined) return maxWaitMs;
  return Math.max(0, Math.min(maxWaitMs, left - Math.min(200, left * 0.1)));
}

/** The reply of every mutating RPC: the transaction now, or once final if the caller waits. */
export async function replyWithState(
  deps: CommandDependencies,
  gid: string,
  wait: boolean,
  context: HandlerContext,
  known?: TransactionWithBranches,
) {
  const found = wait
    ? await deps.engine.waitForFinal(gid, waitBudgetMs(context, deps.config.engine.maxWaitMs), context.signal, known)
    : (known ?? (await deps.store.getTransaction(gid)));
  if (!found) throw transactionNotFound(gid);
  return { transaction: toTransaction(found.transaction, found.branches) };
}

export async function loadTransaction(store: Store, gid: string): Promise<TransactionWithBranches> {
  const found = await store.getTransaction(gid);
  if (!found) throw transactionNotFound(gid);
  return found;
}

export function requireMode(mode: ProtoMode, allowed: readonly Mode[], hint: string): Mode {
  const value = modes.fromProto(mode);
  if (!value || !allowed.includes(value)) throw invalidArgument("mode", hint);
  return value;
}

export function wrongStatus(gid: string, status: string, action: string) {
  return errorWithReason(Code.FailedPrecondition, "WRONG_STATUS", `transaction "${gid}" is ${status}; it cannot be ${action}`, { gid, status });
}

/** A request_id with whose it is and what it asked, as remembered with the request's effect. */
export type RequestClaim = Omit<RequestRecord, "createdAt">;

/** Long identities are stored as a digest, so the key stays within the column. */
const callerScope = (identity: string | undefined) => {
  const caller = identity ?? "";
  return caller.length <= 128 ? caller : `sha256:${createHash("sha256").update(caller).digest("hex")}`;
};

/**
 * request_id (AIP-155): a retried mutating request with the same id has no second effect. Ids are
 * unique per caller (its certificate identity), so one caller can neither replay nor learn about
 * another's requests. The id is written in the same unit as the request's effect, with a digest
 * of the request: a known id with the same digest is a replay (answer with the transaction's
 * current state); with another, the caller reused the id for a different request, which is
 * refused rather than silently dropped.
 */
export class RequestIds {
  constructor(private readonly store: Store) {}

  /** The claim of `request` (undefined when it has no request_id); throws on a bad id. */
  claim<S extends DescMessage>(context: HandlerContext, method: string, gid: string, schema: S, request: MessageShape<S> & { requestId: string }): RequestClaim | undefined {
    const { requestId } = request;
    if (requestId === "") return undefined;
    if (requestId.length > 128) throw invalidArgument("request_id", "must be at most 128 characters");
    // What the request asks, without the id itself or how the caller wants the answer.
    const content = { ...request, requestId: "", ...("wait" in request ? { wait: false } : {}) } as MessageShape<S>;
    const fingerprint = createHash("sha256").update(method).update(toBinary(schema, content)).digest("hex");
    return { requestId, caller: callerScope(context.values.get(callerIdentity)), method, gid, fingerprint };
  }

  /** Throws if the id names another request of this caller; true when this is a replay. */
  async isReplay(claim: RequestClaim | undefined): Promise<boolean> {
    if (!claim) return false;
    const known = await this.store.getRequest(claim.caller, claim.requestId);
    if (!known) return false;
    this.#check(known, claim);
    return true;
  }

  /** The op that records the id, to put in the effect's unit. */
  ops(claim: RequestClaim | undefined): WriteOp[] {
    return claim ? [{ kind: "request", request: { ...claim, createdAt: Date.now() } }] : [];
  }

  /** Whether the unit found the id taken (a concurrent retry won): then reply as a replay. */
  lostRace(outcomes: WriteOutcome[], claim: RequestClaim | undefined): boolean {
    if (!claim) return false;
    const outcome = outcomes[0];
    if (typeof outcome === "object" && !outcome.created && "method" in outcome.existing) {
      this.#check(outcome.existing, claim);
      return true;
    }
    return false;
  }

  #check(known: RequestRecord, claim: RequestClaim) {
    // Rows from before fingerprints were recorded have none: method and gid decide for them.
    const same = known.method === claim.method && known.gid === claim.gid && (known.fingerprint === "" || known.fingerprint === claim.fingerprint);
    if (!same) throw invalidArgument("request_id", `"${claim.requestId}" was already used for a different request; use a new request_id for each distinct request`);
  }
}
