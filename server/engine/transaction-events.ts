import { EventEmitter } from "node:events";

/**
 * In-process notice that a transaction changed, so Submit-with-wait and Watch react at once
 * instead of polling (they still poll the store for changes made by other coordinators).
 */
export class TransactionEvents {
  readonly #emitter = new EventEmitter().setMaxListeners(0);

  changed(gid: string): void {
    this.#emitter.emit(gid);
  }

  /** Resolves at the next change of `gid`, after `timeoutMs`, or when `signal` aborts. */
  next(gid: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#emitter.off(gid, done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#emitter.once(gid, done);
      signal?.addEventListener("abort", done, { once: true });
    });
  }
}
