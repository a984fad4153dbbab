import type { Logger } from "pino";
import type { RetentionConfig } from "../config/schema.js";
import type { DeletedRows, Store } from "../store/index.js";

export interface Retention {
  /** Schedules the first run after a jittered interval, then one after each run. */
  start(): void;
  /** No more runs; resolves once a run in progress has finished its current batch. */
  stop(): Promise<void>;
  /** One run now: batches until none are left or `maxBatchesPerRun`; what it removed. */
  runOnce(): Promise<DeletedRows>;
}

export interface RetentionOptions {
  store: Store;
  /** Read at every run, so a reloaded configuration applies from the next one. */
  config: () => RetentionConfig;
  logger: Logger;
  /** Told after every batch that removed rows (the retention metric). */
  onDeleted?: (rows: DeletedRows) => void;
  random?: () => number;
}

const none = (): DeletedRows => ({ transactions: 0, branches: 0, requests: 0, adminActions: 0 });

/**
 * Retention of finished transactions, off the request path: on its own timer, each run deletes
 * bounded batches (Store.deleteFinished) of transactions finished longer ago than
 * `retention.finishedAfterMs`. Every coordinator runs it; deletes are idempotent, and the waits
 * are jittered so coordinators sharing a database do not all run at the same moment.
 */
export function createRetention({ store, config, logger, onDeleted, random = Math.random }: RetentionOptions): Retention {
  const log = logger.child({ component: "retention" });
  let timer: NodeJS.Timeout | undefined;
  let started = false;
  /** Set by stop(): a run in progress ends after its current batch. */
  let halted = false;
  let running: Promise<unknown> = Promise.resolve();

  const runOnce = async (): Promise<DeletedRows> => {
    const settings = config();
    const total = none();
    if (settings.finishedAfterMs === 0) return total;
    const finishedBefore = Date.now() - settings.finishedAfterMs;
    let batches = 0;
    let full = false;
    try {
      while (batches < settings.maxBatchesPerRun && !halted) {
        const rows = await store.deleteFinished(finishedBefore, settings.batchSize);
        batches++;
        for (const key of Object.keys(total) as (keyof DeletedRows)[]) total[key] += rows[key];
        if (rows.transactions > 0) onDeleted?.(rows);
        // Fewer than a full batch: nothing that old is left (or another coordinator took it).
        full = rows.transactions >= settings.batchSize;
        if (!full) break;
      }
    } catch (error) {
      // The batches before the failure were committed: say so, then let the caller report it.
      if (total.transactions > 0) log.info({ ...total, batches, finishedBefore }, "retention deleted finished transactions before a batch failed");
      throw error;
    }
    if (total.transactions > 0) log.info({ ...total, batches, finishedBefore }, "retention deleted finished transactions");
    else log.debug({ finishedBefore }, "retention: nothing to delete");
    if (full && batches === settings.maxBatchesPerRun) {
      log.info({ maxBatchesPerRun: settings.maxBatchesPerRun }, "retention: more to delete; the next run goes on");
    }
    return total;
  };

  const schedule = () => {
    const { intervalMs } = config();
    // From half to one and a half intervals: the mean stays the interval, and coordinators that
    // started together drift apart.
    timer = setTimeout(
      () => {
        running = runOnce()
          .catch((error: unknown) => log.error({ err: error }, "retention run failed; the next run tries again"))
          .finally(() => {
            if (started) schedule();
          });
      },
      Math.round(intervalMs * (0.5 + random())),
    );
    // A coordinator that forgot to stop must still be able to exit.
    timer.unref();
  };

  return {
    start() {
      if (started) return;
      started = true;
      halted = false;
      schedule();
      const { finishedAfterMs, intervalMs } = config();
      log.info({ finishedAfterMs, intervalMs }, finishedAfterMs === 0 ? "retention off (retention.finishedAfterMs = 0)" : "retention started");
    },
    async stop() {
      started = false;
      halted = true;
      clearTimeout(timer);
      await running;
    },
    runOnce,
  };
}
