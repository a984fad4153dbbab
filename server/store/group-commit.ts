/**
 * Group commit: callers hand in units of work; while one database transaction is committing,
 * new units queue up and then all go in the next one. Under load, many units share a commit;
 * when idle, a unit commits at once (no added latency).
 *
 * `lingerMs` holds a commit back that long to let a group form: for a backend whose commit blocks
 * the event loop (SQLite's fsync), nothing can queue up while it runs, so without a linger every
 * unit would pay for its own fsync.
 *
 * If a grouped commit fails, each of its units is retried in a commit of its own, so one bad
 * unit (say, a duplicate key) never fails the others.
 */
export function createGroupCommit<U, R>(
  execute: (units: U[]) => Promise<R[]>,
  options: { maxUnits: number; concurrency: number; lingerMs?: number },
): (unit: U) => Promise<R> {
  const queue: { unit: U; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  let active = 0;

  const runBatch = async (batch: typeof queue) => {
    try {
      const results = await execute(batch.map((b) => b.unit));
      batch.forEach((b, i) => b.resolve(results[i]!));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      for (const b of batch) {
        try {
          b.resolve((await execute([b.unit]))[0]!);
        } catch (single) {
          b.reject(single);
        }
      }
    }
  };

  const drain = async () => {
    active++;
    try {
      while (queue.length > 0) {
        if (options.lingerMs && queue.length < options.maxUnits) await new Promise((r) => setTimeout(r, options.lingerMs));
        await runBatch(queue.splice(0, options.maxUnits));
      }
    } finally {
      active--;
    }
  };

  return (unit) =>
    new Promise<R>((resolve, reject) => {
      queue.push({ unit, resolve, reject });
      if (active < options.concurrency) void drain();
    });
}
