import { EventEmitter } from "node:events";
import type { TransactionWithBranches } from "../store/index.js";

export interface Subscription {
  /** The new state when this coordinator made the change; undefined after a timeout or abort. */
  changed: Promise<TransactionWithBranches | undefined>;
  cancel(): void;
}

/**
 * In-process notice that a transaction changed, carrying its new state, so Submit-with-wait and
 * Watch react at once without reading the store (they still poll it for other coordinators).
 */
export class TransactionEvents {
  readonly #emitter = new EventEmitter().setMaxListeners(0);

  changed(gid: string, state?: TransactionWithBranches): void {
    this.#emitter.emit(gid, state);
  }

  /** Whether anyone here waits on `gid`, so a caller can skip building a state no one reads. */
  watched(gid: string): boolean {
    return this.#emitter.listenerCount(gid) > 0;
  }

  /** Subscribe before looking at the current state, so no change slips between the two. */
  subscribe(gid: string, timeoutMs: number, signal?: AbortSignal): Subscription {
    let cancel = () => {};
    const changed = new Promise<TransactionWithBranches | undefined>((resolve) => {
      const done = (state?: TransactionWithBranches) => {
        clearTimeout(timer);
        this.#emitter.off(gid, done);
        signal?.removeEventListener("abort", onAbort);
        resolve(state);
      };
      const onAbort = () => done();
      const timer = setTimeout(done, timeoutMs);
      this.#emitter.on(gid, done);
      signal?.addEventListener("abort", onAbort, { once: true });
      cancel = () => done();
    });
    return { changed, cancel };
  }
}
