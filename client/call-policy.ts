import { Code, ConnectError } from "@connectrpc/connect";

// When a coordinator dies mid-call, connect-node reports ABORTED (connection reset) or CANCELED
// (HTTP/2 stream cancelled). The coordinator itself never answers either, so both are transport
// failures; CANCELED is retried only when the caller did not cancel (checked by withFailover).
const RETRYABLE = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Canceled]);

/** Whether a failed call may be sent again (with the same request_id, so without a second effect). */
export function isRetryable(error: unknown): boolean {
  return error instanceof ConnectError && RETRYABLE.has(error.code);
}

/**
 * Runs `call` against the coordinators in turn: on UNAVAILABLE, DEADLINE_EXCEEDED or a broken
 * connection (ABORTED, or CANCELED that the caller did not ask for) the next one
 * is tried, up to `retries` more times, with a short growing pause; the caller's AbortSignal
 * stops it at once.
 */
export async function withFailover<T>(
  targets: number,
  retries: number,
  call: (target: number) => Promise<T>,
  signal?: AbortSignal,
  start = 0,
): Promise<T> {
  let lastError: unknown;
  for (let attempt = 0; attempt <= retries; attempt++) {
    signal?.throwIfAborted();
    try {
      return await call((start + attempt) % targets);
    } catch (error) {
      if (!isRetryable(error) || signal?.aborted) throw error;
      lastError = error;
      await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
    }
  }
  throw lastError;
}
