/** Thrown by a probe when waiting longer is pointless (say, the process it waits for exited). */
export class GiveUp extends Error {}

/**
 * Polls `probe` until it resolves truthy, or fails after `timeoutMs` with the last error; at once
 * if the probe throws `GiveUp`. `what` may be a function, to describe the state at the timeout.
 */
export async function waitUntil<T>(
  probe: () => Promise<T | undefined | false>,
  what: string | (() => string),
  timeoutMs = 15_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (error) {
      if (error instanceof GiveUp) throw error;
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const description = typeof what === "function" ? what() : what;
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${description}${lastError ? `: ${String(lastError)}` : ""}`);
}

/**
 * A one-shot signal for holding something (a branch call, say) until the test has seen what it
 * needs, instead of guessing a delay. `opened` resolves once `open()` is called, or after
 * `maxMs` at the latest, so a failed test never leaves a call hanging for ever.
 */
export interface Gate {
  opened: Promise<void>;
  open(): void;
  /** True when `open()` was called before `maxMs` ran out. */
  isOpen(): boolean;
}

export function gate(maxMs = 60_000): Gate {
  let release = () => {};
  let state: "closed" | "open" | "timed out" = "closed";
  const opened = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      if (state === "closed") state = "timed out";
      resolve();
    }, maxMs);
    timer.unref();
    release = () => {
      clearTimeout(timer);
      resolve();
    };
  });
  return {
    opened,
    open() {
      if (state === "closed") state = "open";
      release();
    },
    isOpen: () => state === "open",
  };
}
