/** Closed-loop load: `clients` workers each run `op` back to back until the time is up. */
export interface LoadResult {
  clients: number;
  seconds: number;
  completed: number;
  errors: number;
  perSecond: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(
  clients: number,
  durationMs: number,
  op: (worker: number, i: number) => Promise<void>,
  options: { warmupMs?: number; maxOps?: number } = {},
): Promise<LoadResult> {
  const warmupEnd = Date.now() + (options.warmupMs ?? 0);
  const end = warmupEnd + durationMs;
  const latencies: number[] = [];
  let errors = 0;
  let started = 0;
  let firstError: unknown;
  const maxOps = options.maxOps ?? Number.MAX_SAFE_INTEGER;
  const worker = async (w: number) => {
    for (let i = 0; Date.now() < end && started < maxOps; i++) {
      started++;
      const t0 = performance.now();
      try {
        await op(w, i);
        if (Date.now() >= warmupEnd) latencies.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
  if (errors > 0) console.error(`  ${errors} errors; first: ${String(firstError)}`);
  latencies.sort((a, b) => a - b);
  const seconds = durationMs / 1000;
  return {
    clients,
    seconds,
    completed: latencies.length,
    errors,
    perSecond: Math.round(latencies.length / seconds),
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    p99Ms: round(percentile(latencies, 99)),
  };
}

const round = (n: number) => Math.round(n * 100) / 100;
