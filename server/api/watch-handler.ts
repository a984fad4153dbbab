import type { HandlerContext } from "@connectrpc/connect";
import type { WatchTransactionRequest } from "../../gen/accord/v1/coordinator_pb.js";
import type { Engine } from "../engine/engine.js";
import { isFinal, type AdminActionRecord, type Store, type TransactionWithBranches } from "../store/index.js";
import { loadTransaction } from "../engine/commands/context.js";
import { toTransaction } from "./transaction-mapper.js";
import { requireGid } from "./validation.js";

/** How often the store is read for changes made by other coordinators (or missed events). */
const POLL_MS = 250;

/** What a watcher should see change: status, stalled, last error, every branch's progress, operators' actions. */
function fingerprint({ transaction: t, branches }: TransactionWithBranches, actions: readonly AdminActionRecord[]): string {
  return JSON.stringify([t.status, t.stalled, t.lastError, t.failureReason, branches.map((b) => [b.branchId, b.op, b.status, b.attempts]), actions.length]);
}

/**
 * WatchTransaction: the current state, then every change, ending after a final status. Changes
 * made here arrive as events; the store is polled too, so it works across coordinators.
 */
export function createWatchHandler(store: Store, engine: Engine) {
  return async function* watchTransaction(request: WatchTransactionRequest, context: HandlerContext) {
    const gid = requireGid(request.gid);
    let current = await loadTransaction(store, gid);
    // Operators' actions come with a change of their own (an event without a state, or a poll).
    let actions = await store.getAdminActions(gid);
    let last = "";
    while (!context.signal.aborted) {
      const subscription = engine.events.subscribe(gid, POLL_MS, context.signal);
      const print = fingerprint(current, actions);
      if (print !== last) {
        last = print;
        yield { transaction: toTransaction(current.transaction, current.branches, actions) };
      }
      if (isFinal(current.transaction.status)) {
        subscription.cancel();
        return;
      }
      const changed = await subscription.changed;
      if (changed) {
        current = changed;
      } else {
        [current, actions] = await Promise.all([store.getTransaction(gid).then((found) => found ?? current), store.getAdminActions(gid)]);
      }
    }
  };
}
