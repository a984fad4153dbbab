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
  run: (units: U[]) => Promise<R[]>,
  // NoInfer: the units' type comes from `run` and the caller, never from an observer given as unknown.
  options: { maxUnits: number; concurrency: number; lingerMs?: number; observer?: GroupCommitObserver<NoInfer<U>, NoInfer<R>> },
): (unit: U) => Promise<R> {
  const queue: { unit: U; resolve: (r: R) => void; reject: (e: unknown) => void; at: number }[] = [];
  let active = 0;
  const { observer } = options;

  const execute = !observer
    ? run
    : async (units: U[]) => {
        const started = performance.now();
        let results: R[];
        try {
          results = await run(units);
        } catch (error) {
          observer.failed(units.length, (performance.now() - started) / 1000);
          throw error;
        }
        observer.committed(units, results, (performance.now() - started) / 1000);
        return results;
      };
  const resolve = (b: (typeof queue)[number], result: R) => {
    observer?.answered((performance.now() - b.at) / 1000);
    b.resolve(result);
  };
  const reject = (b: (typeof queue)[number], error: unknown) => {
    observer?.answered((performance.now() - b.at) / 1000);
    b.reject(error);
  };

  const runBatch = async (batch: typeof queue) => {
    try {
      const results = await execute(batch.map((b) => b.unit));
      batch.forEach((b, i) => resolve(b, results[i]!));
    } catch (error) {
      if (batch.length === 1) {
        reject(batch[0]!, error);
        return;
      }
      for (const b of batch) {
        try {
          resolve(b, (await execute([b.unit]))[0]!);
        } catch (single) {
          reject(b, single);
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
      queue.push({ unit, resolve, reject, at: observer ? performance.now() : 0 });
      if (active < options.concurrency) void drain();
    });
}

/** Told about every database transaction and every caller's answer (metrics). */
export interface GroupCommitObserver<U, R> {
  /** One database transaction committed `units` in `seconds`; `results[i]` answers `units[i]`. */
  committed(units: readonly U[], results: readonly R[], seconds: number): void;
  /** One database transaction of `units` units failed after `seconds` (several are then retried alone). */
  failed(units: number, seconds: number): void;
  /** A caller's unit was answered, committed or failed, `seconds` after it was handed in. */
  answered(seconds: number): void;
}
