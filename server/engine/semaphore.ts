/** A counting semaphore: the bulkhead behind per-host and per-coordinator limits. */
export class Semaphore {
  #limit: number;
  /** Below zero after the limit was lowered under what is in use: releases pay that back first. */
  #available: number;
  readonly #waiters: (() => void)[] = [];

  constructor(limit: number) {
    this.#limit = limit;
    this.#available = limit;
  }

  get limit(): number {
    return this.#limit;
  }

  get inUse(): number {
    return this.#limit - this.#available;
  }

  /**
   * Changes the limit (a config reload). Raising it lets waiters in at once; lowering it below
   * what is in use takes nothing back: new holders wait until enough are released.
   */
  setLimit(limit: number): void {
    if (limit === this.#limit) return;
    this.#available += limit - this.#limit;
    this.#limit = limit;
    while (this.#available > 0 && this.#waiters.length > 0) {
      this.#available--;
      this.#waiters.shift()!();
    }
  }

  tryAcquire(): boolean {
    if (this.#available <= 0) return false;
    this.#available--;
    return true;
  }

  acquire(): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#available >= 0 ? this.#waiters.shift() : undefined;
    if (next) next();
    else this.#available++;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await task();
    } finally {
      this.release();
    }
  }
}
