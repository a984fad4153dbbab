import { Code, type HandlerContext } from "@connectrpc/connect";
import type { Mode as ProtoMode } from "../../gen/accord/v1/transaction_pb.js";
import type { AccordConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import type { TargetPolicy } from "../security/target-policy.js";
import type { Mode, Store, TransactionWithBranches, WriteOp, WriteOutcome } from "../store/index.js";
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

/**
 * request_id: a retried mutating request with the same id has no second effect. The id is
 * written in the same unit as the request's effect; a known id means "replay": answer with the
 * transaction's current state.
 */
export class RequestIds {
  constructor(private readonly store: Store) {}

  /** Throws if the id names another request; true when this is a replay. */
  async isReplay(requestId: string, method: string, gid: string): Promise<boolean> {
    if (requestId === "") return false;
    if (requestId.length > 128) throw invalidArgument("request_id", "must be at most 128 characters");
    const known = await this.store.getRequest(requestId);
    if (!known) return false;
    this.#check(known, requestId, method, gid);
    return true;
  }

  /** The op that records the id, to put in the effect's unit. */
  ops(requestId: string, method: string, gid: string): WriteOp[] {
    return requestId ? [{ kind: "request", request: { requestId, method, gid, createdAt: Date.now() } }] : [];
  }

  /** Whether the unit found the id taken (a concurrent retry won): then reply as a replay. */
  lostRace(outcomes: WriteOutcome[], requestId: string, method: string, gid: string): boolean {
    if (!requestId) return false;
    const outcome = outcomes[0];
    if (typeof outcome === "object" && !outcome.created && "method" in outcome.existing) {
      this.#check(outcome.existing, requestId, method, gid);
      return true;
    }
    return false;
  }

  #check(known: { method: string; gid: string }, requestId: string, method: string, gid: string) {
    if (known.method !== method || known.gid !== gid) {
      throw invalidArgument("request_id", `"${requestId}" was already used for ${known.method} of "${known.gid}"`);
    }
  }
}
