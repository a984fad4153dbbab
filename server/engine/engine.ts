import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import type { EngineConfig } from "../config.js";
import type { EngineMetrics } from "../observe/metrics.js";
import { inTransactionTrace, tracingOn } from "../observe/tracing.js";
import { isFinal, type Store, type TransactionRecord, type TransactionWithBranches } from "../store/index.js";
import type { BranchInvoker } from "./branch-invoker.js";
import { runTransaction, type RunResult } from "./transaction-runner.js";
import { Semaphore } from "./semaphore.js";
import { TransactionEvents } from "./transaction-events.js";

export interface Engine {
  /** This coordinator's identity in lease rows. */
  readonly coordinatorId: string;
  readonly events: TransactionEvents;
  /** Reserve a run slot for a transaction about to be created; false when the bulkhead is full. */
  reserve(): boolean;
  /** Give back a slot from reserve() that was not used (e.g. the gid already existed). */
  unreserve(): void;
  /** Stops a run of `gid` here, as if its lease were lost (an operator took it); false when none runs. */
  revoke(gid: string): boolean;
  /** A command ended a transaction without a run (an MSG aborted or failed before Submit): count it. */
  finishedByCommand(transaction: TransactionRecord, outcome: "succeeded" | "failed", at: number): void;
  /**
   * Run a transaction this coordinator just took the lease of, in a reserved slot. `known` is
   * its state when the caller has it (Submit of a SAGA: the rows it wrote), saving a read.
   */
  runReserved(gid: string, known?: TransactionWithBranches): void;
  /** The changes that give this coordinator the lease of a transaction from `now`. */
  leaseChanges(now: number): { owner: string; leaseUntil: number };
  /** Makes a transaction about to be created this coordinator's to run (the first lease generation). */
  takeLeaseOnCreate(transaction: TransactionRecord): void;
  /**
   * The transaction once final, or its latest state when `timeoutMs` passes or `signal` aborts.
   * `known` is a state the caller already has, saving the first read.
   */
  waitForFinal(gid: string, timeoutMs: number, signal?: AbortSignal, known?: TransactionWithBranches): Promise<TransactionWithBranches | undefined>;
  /** Start polling for due work. */
  start(): void;
  /**
   * Stop claiming and running: no polling, no new runs (reserve() is false), running
   * transactions handed back at their next step. Resolves with how many still run after `waitMs`.
   */
  drain(waitMs: number): Promise<number>;
  /** drain(), then stop renewing leases: the engine is done. */
  stop(graceMs: number): Promise<void>;
}

/** A transaction running here: whether its lease is still held, until when as far as we know, and under which generation. */
interface RunEntry {
  leaseLost: boolean;
  released: boolean;
  leaseUntil: number;
  /** Known once the run has read the transaction. */
  generation: number | undefined;
  done: Promise<void>;
}

export interface EngineOptions {
  store: Store;
  /**
   * Read where each value is used, so it may be a live view whose values change on a config
   * reload (LiveConfig.view.engine); the keys that need a restart never change in one.
   */
  config: EngineConfig;
  logger: Logger;
  invoker: BranchInvoker;
  metrics?: EngineMetrics;
}

/** Fallback polling for changes made by other coordinators while a caller waits. */
const WAIT_POLL_MS = 500;

export function createEngine({ store, config, logger, invoker, metrics }: EngineOptions): Engine {
  const coordinatorId = config.coordinatorId || `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
  const events = new TransactionEvents();
  const slots = new Semaphore(config.maxRunningTransactions);
  /** Follows a reloaded maxRunningTransactions wherever a slot is taken. */
  const takeSlot = () => {
    slots.setLimit(config.maxRunningTransactions);
    return slots.tryAcquire();
  };
  /** Transactions running here: whether their lease is still held, and until when as far as we know. */
  const running = new Map<string, RunEntry>();
  let stopping = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let renewTimer: NodeJS.Timeout | undefined;
  const log = logger.child({ coordinator: coordinatorId });

  const ctx = {
    store,
    invoker,
    config,
    coordinatorId,
    logger: log,
    events,
    metrics,
    shouldYield: (gid: string) => stopping || (running.get(gid)?.leaseLost ?? false),
    noteLease(gid: string, leaseUntil: number | null, generation: number) {
      const entry = running.get(gid);
      if (!entry) return;
      if (leaseUntil !== null) entry.leaseUntil = leaseUntil;
      entry.generation = generation;
    },
    noteReleased(gid: string) {
      const entry = running.get(gid);
      if (entry) entry.released = true;
    },
    /**
     * Renewals run every third of a lease, so a lease with less than that left means renewals
     * fell behind (a pause, a busy process): renew this one now before a call leaves on it.
     */
    async stillOwned(gid: string) {
      const entry = running.get(gid);
      if (!entry || entry.leaseLost || entry.released) return false;
      if (Date.now() < entry.leaseUntil - config.leaseMs / 3) return true;
      const until = Date.now() + config.leaseMs;
      const kept = entry.generation === undefined ? [] : await store.renewLeases(coordinatorId, [{ gid, generation: entry.generation }], until);
      if (kept.includes(gid)) entry.leaseUntil = until;
      else await notRenewed(gid, entry);
      return !entry.leaseLost;
    },
  };

  const markLost = (gid: string, entry: { leaseLost: boolean }) => {
    if (entry.leaseLost) return;
    entry.leaseLost = true;
    metrics?.leaseLost();
    log.warn({ gid }, "lease lost; stopping work on the transaction");
  };

  /**
   * A renewal that did not keep the lease: lost if someone took the transaction since (a higher
   * generation, or another owner). A row with no owner at this run's generation was handed back —
   * by this run's own last write, whose answer can reach the run just after the renewal's does,
   * or by an operator — so the run stops quietly, with no "lease lost" to alarm anyone.
   */
  const notRenewed = async (gid: string, entry: RunEntry) => {
    const row = (await store.getTransaction(gid))?.transaction;
    if (row === undefined || (row.owner === null && row.leaseGeneration === entry.generation)) entry.leaseLost = true;
    else markLost(gid, entry);
  };

  /**
   * Runs with a slot already taken; the slot is released when the run ends. The run belongs to
   * the transaction's trace (its store writes join it), not to the request that started it.
   */
  const launch = (gid: string, initial?: TransactionWithBranches, traceparent = initial?.transaction.traceparent) => {
    // Until the run reads the transaction, assume the shortest lease anyone could have given it.
    const entry: RunEntry = { leaseLost: false, released: false, leaseUntil: Date.now() + config.leaseMs / 2, generation: undefined, done: Promise.resolve() };
    running.set(gid, entry);
    metrics?.runStarted();
    entry.done = (tracingOn() ? inTransactionTrace(traceparent, () => runTransaction(ctx, gid, initial)) : runTransaction(ctx, gid, initial))
      .then((result: RunResult) => log.debug({ gid, result }, "run ended"))
      .catch((error: unknown) => {
        // The lease stops being renewed below, so the work is taken over once it expires.
        log.error({ err: error, gid }, "run failed; the transaction will be retried after its lease expires");
      })
      .finally(() => {
        running.delete(gid);
        slots.release();
        metrics?.runEnded();
      });
  };

  const poll = async () => {
    slots.setLimit(config.maxRunningTransactions);
    const free = config.maxRunningTransactions - slots.inUse;
    if (free <= 0) return;
    const now = Date.now();
    const claimed = await store.claimDue(coordinatorId, now, now + config.leaseMs, Math.min(free, config.claimBatch));
    for (const tx of claimed) {
      // Counted even if it is given back below: the other coordinator's lease was broken all the same.
      if (tx.previousOwner !== null && tx.previousOwner !== coordinatorId) metrics?.leaseTakenOver();
      if (running.has(tx.gid) || !takeSlot()) {
        // Cannot run it now: let the lease lapse quickly for someone else.
        await store.write([{ kind: "transaction", gid: tx.gid, expect: { owner: coordinatorId }, changes: { owner: null, leaseUntil: null } }]);
        continue;
      }
      launch(tx.gid, undefined, tx.traceparent);
    }
  };

  const schedulePoll = () => {
    pollTimer = setTimeout(() => {
      poll()
        .catch((error: unknown) => log.error({ err: error }, "polling for due transactions failed"))
        .finally(() => {
          if (!stopping) schedulePoll();
        });
    }, config.pollIntervalMs);
  };

  const renew = async () => {
    // A run that has not read its transaction yet does not know its generation; it will within a step.
    const leases = [...running].flatMap(([gid, entry]) => (entry.generation === undefined ? [] : [{ gid, generation: entry.generation }]));
    if (leases.length === 0) return;
    const until = Date.now() + config.leaseMs;
    const kept = new Set(await store.renewLeases(coordinatorId, leases, until));
    for (const { gid } of leases) {
      const entry = running.get(gid);
      // A run that just gave its transaction back (finished, or waiting) holds no lease to lose.
      if (!entry || entry.released) continue;
      if (kept.has(gid)) entry.leaseUntil = Math.max(entry.leaseUntil, until);
      else await notRenewed(gid, entry);
    }
  };

  const drain = async (waitMs: number): Promise<number> => {
    if (!stopping) log.info({ running: running.size }, "draining: no more claims or new runs; handing back what runs");
    stopping = true;
    clearTimeout(pollTimer);
    const runs = [...running.values()].map((r) => r.done);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise((r) => (timer = setTimeout(r, waitMs)));
    await Promise.race([Promise.all(runs), timeout]);
    clearTimeout(timer);
    return running.size;
  };

  return {
    coordinatorId,
    events,
    reserve: () => !stopping && takeSlot(),
    unreserve: () => slots.release(),
    revoke(gid) {
      const entry = running.get(gid);
      if (entry) markLost(gid, entry);
      return entry !== undefined;
    },
    finishedByCommand: (transaction, outcome, at) => metrics?.transactionFinished(transaction.mode, outcome, (at - transaction.createdAt) / 1000),
    runReserved: launch,
    leaseChanges: (now) => ({ owner: coordinatorId, leaseUntil: now + config.leaseMs }),
    takeLeaseOnCreate(transaction) {
      Object.assign(transaction, { owner: coordinatorId, leaseUntil: transaction.createdAt + config.leaseMs, leaseGeneration: 1 });
    },

    async waitForFinal(gid, timeoutMs, signal, known) {
      const deadline = Date.now() + timeoutMs;
      let current = known;
      let fresh = known !== undefined;
      for (;;) {
        // Subscribe before reading, so a change between the read and the wait is not missed.
        const subscription = events.subscribe(gid, Math.max(0, Math.min(deadline - Date.now(), WAIT_POLL_MS)), signal);
        if (!fresh) current = await store.getTransaction(gid);
        if (!current || isFinal(current.transaction.status) || Date.now() >= deadline || signal?.aborted) {
          subscription.cancel();
          return current;
        }
        const changed = await subscription.changed;
        // A state from this coordinator is current; otherwise (timeout) read the store again.
        fresh = changed !== undefined;
        if (changed) current = changed;
      }
    },

    start() {
      schedulePoll();
      renewTimer = setInterval(() => {
        renew().catch((error: unknown) => log.error({ err: error }, "renewing leases failed"));
      }, Math.max(50, Math.floor(config.leaseMs / 3)));
      log.info({ leaseMs: config.leaseMs, pollIntervalMs: config.pollIntervalMs }, "engine started");
    },

    drain,

    async stop(graceMs) {
      await drain(graceMs);
      clearInterval(renewTimer);
      if (running.size > 0) log.warn({ running: running.size }, "runs still in flight at stop; their leases will expire");
    },
  };
}
