import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Logger } from "pino";
import type { RegistrationState } from "../cluster/etcd-registration.js";
import type { BranchOutcome } from "../engine/outcome.js";
import { MODES, type BacklogStats, type CreateResult, type DeletedRows, type Mode, type Store, type StoreObserver } from "../store/index.js";
import { createHostLabels } from "./host-labels.js";

// The coordinator's Prometheus metrics (README, "Metrics"). One registry per coordinator, never
// prom-client's global one, so several coordinators can run in one process (the tests do).
//
// Every label takes its values from a fixed set (modes, ops, outcomes, statuses, codes, the
// API's methods, the operator's allowlist entries): never a gid, a URL or anything a caller
// chooses, so the number of series does not grow with traffic. test/observe/metrics.test.ts
// checks it.

/** What the engine reports: runs, leases, and how transactions end. */
export interface EngineMetrics {
  runStarted(): void;
  runEnded(): void;
  /** This coordinator claimed a transaction whose lease another coordinator had let run out. */
  leaseTakenOver(): void;
  /** This coordinator found it no longer held the lease of a transaction it was running. */
  leaseLost(): void;
  transactionFinished(mode: Mode, outcome: "succeeded" | "failed", seconds: number): void;
}

export type CalledOutcome = Exclude<BranchOutcome["kind"], "unsent">;

/** What the branch invoker reports: each call that left, by op, outcome and host. */
export interface BranchCallMetrics {
  /** The bounded `host` label of a target (the allowlist entry it matched, or "other"). */
  hostLabel(url: URL): string;
  branchCalled(op: string, outcome: CalledOutcome, host: string, seconds: number): void;
}

/** What the RPC interceptor reports; `seconds` only for unary calls (a stream lasts as long as it is watched). */
export interface RpcMetrics {
  rpcHandled(method: string, code: string, seconds: number | undefined): void;
}

/** What retention reports: the rows one of its batches deleted (server/engine/retention.ts). */
export interface RetentionMetrics {
  retentionDeleted(rows: DeletedRows): void;
}

export interface Metrics extends EngineMetrics, BranchCallMetrics, RpcMetrics, RetentionMetrics {
  readonly registry: Registry;
  /** The Content-Type of render()'s text. */
  readonly contentType: string;
  /** The Prometheus text exposition: this coordinator's families, then the process's. */
  render(): Promise<string>;
  /** Group commits: write latency, batch sizes, and the transactions created. */
  readonly store: StoreObserver;
  /** The backlog gauges read `store` on scrape (at most once a second, bounded in time). */
  watchBacklog(store: Store, logger: Logger): void;
  /** The etcd registration gauge reads `state` on scrape. */
  watchRegistration(state: () => RegistrationState): void;
  /**
   * One config reload (file change or SIGHUP) ended: `ok` false when the new config was refused
   * and the running one kept. Counts accord_config_reloads_total (every reload) and
   * accord_config_reload_failures_total (the refused ones), and sets
   * accord_config_last_reload_successful.
   */
  configReloaded(ok: boolean): void;
}

export interface MetricsOptions {
  version: string;
  /** security.allowedTargetHosts, read as it is now (it may be reloaded). */
  allowedTargetHosts: () => string | readonly string[];
}

// Buckets in seconds. Branch calls and store writes are milliseconds when healthy and up to the
// timeouts (branch_timeout, the lock wait) when not; transactions last from milliseconds (a
// saga of quick calls) to hours (a PREPARED TCC waiting for its Submit, a stalled one).
const CALL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STORE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const TRANSACTION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600];
const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

const REGISTRATION_STATES: readonly RegistrationState[] = ["disabled", "registering", "registered", "unavailable"];
/** The backlog query is cluster-wide work: a burst of scrapes shares one answer this fresh. */
const BACKLOG_MAX_AGE_MS = 1000;
/** A scrape must not hang on an unreachable database; Prometheus' own timeout is 10 s by default. */
const BACKLOG_TIMEOUT_MS = 2000;

let processRegistry: Registry | undefined;

/**
 * Process and Node.js metrics under their usual names (process_cpu_seconds_total,
 * nodejs_eventloop_lag_seconds, …), so existing dashboards work. One registry per process, not
 * per coordinator: the numbers are the process's, and prom-client's collectors (a GC observer,
 * an event-loop monitor) cannot be stopped, so making them per coordinator would leak them.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** A cache of prom-client children by two label values, so a hot path allocates nothing to find one. */
function children<C>(make: (a: string, b: string) => C): (a: string, b: string) => C {
  const byA = new Map<string, Map<string, C>>();
  return (a, b) => {
    let byB = byA.get(a);
    if (!byB) byA.set(a, (byB = new Map()));
    let child = byB.get(b);
    if (!child) byB.set(b, (child = make(a, b)));
    return child;
  };
}

export function createMetrics(options: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];

  new Gauge({ name: "accord_build_info", help: "Always 1; the coordinator's version as a label.", labelNames: ["version"], registers }).set({ version: options.version }, 1);

  // Transactions.
  const started = new Counter({
    name: "accord_transactions_started_total",
    help: "Transactions created by this coordinator (a SAGA's Submit, a Begin), by mode, counted once committed.",
    labelNames: ["mode"],
    registers,
  });
  const finished = new Counter({
    name: "accord_transactions_finished_total",
    help: "Transactions this coordinator's engine drove to a final status, by mode and outcome (succeeded, failed).",
    labelNames: ["mode", "outcome"],
    registers,
  });
  const duration = new Histogram({
    name: "accord_transaction_duration_seconds",
    help: "From creation to the final status, of the transactions counted in accord_transactions_finished_total, by mode.",
    labelNames: ["mode"],
    buckets: TRANSACTION_BUCKETS,
    registers,
  });
  for (const mode of MODES) {
    // Zero from the start, so rate() and increase() see the first one.
    started.inc({ mode }, 0);
    for (const outcome of ["succeeded", "failed"]) finished.inc({ mode, outcome }, 0);
  }
  const startedOf = new Map(MODES.map((mode) => [mode, started.labels(mode)]));
  const finishedOf = children((mode, outcome) => finished.labels(mode, outcome));
  const durationOf = new Map(MODES.map((mode) => [mode, duration.labels(mode)]));
  const running = new Gauge({
    name: "accord_running_transactions",
    help: "Transactions this coordinator is running now (in flight, holding their lease).",
    registers,
  });
  const takeovers = new Counter({
    name: "accord_lease_takeovers_total",
    help: "Claims of a transaction whose lease another coordinator held and let run out (it died, paused or lost the database).",
    registers,
  });
  const leasesLost = new Counter({
    name: "accord_leases_lost_total",
    help: "Transactions this coordinator was running when it found its lease gone (taken over, or not renewed in time).",
    registers,
  });

  // Branch calls.
  const callDuration = new Histogram({
    name: "accord_branch_call_duration_seconds",
    help: "Branch calls that left, from sending to the answer (or the timeout), by op and outcome (success, failure, ongoing, error).",
    labelNames: ["op", "outcome"],
    buckets: CALL_BUCKETS,
    registers,
  });
  const calls = new Counter({
    name: "accord_branch_calls_total",
    help: 'Branch calls that left, by host (the security.allowedTargetHosts entry the target matched, or "other") and outcome.',
    labelNames: ["host", "outcome"],
    registers,
  });
  const callDurationOf = children((op, outcome) => callDuration.labels(op, outcome));
  const callsOf = children((host, outcome) => calls.labels(host, outcome));

  // The backlog, read from the store on scrape: the same for every coordinator sharing a database.
  let backlogSource: (() => Promise<{ stats: BacklogStats; at: number } | undefined>) | undefined;
  const backlogGauge = (name: string, help: string, value: (stats: BacklogStats, at: number) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        if (!backlogSource) return;
        const read = await backlogSource();
        // Unknown is not zero: NaN fails every alert comparison instead of reporting all clear.
        this.set(read ? value(read.stats, read.at) : NaN);
      },
    });
  backlogGauge(
    "accord_backlog_due_transactions",
    "Transactions due and not leased: waiting for a coordinator to claim them (whole database; NaN when the store did not answer).",
    (s) => s.due,
  );
  backlogGauge(
    "accord_backlog_oldest_due_age_seconds",
    "How long the oldest due, unleased transaction has been waiting to be claimed; 0 when none waits (whole database).",
    (s, at) => (s.oldestDueAt === null ? 0 : Math.max(0, (at - s.oldestDueAt) / 1000)),
  );
  backlogGauge("accord_stalled_transactions", "Unfinished transactions marked stalled: retried past their policy, still retrying (whole database).", (s) => s.stalled);
  backlogGauge("accord_unfinished_transactions", "Transactions not yet final (whole database).", (s) => s.unfinished);
  const backlogFailures = new Counter({
    name: "accord_backlog_query_failures_total",
    help: "Scrapes whose backlog query failed or took over 2 s (the backlog gauges then read NaN).",
    registers,
  });

  // The store.
  const writeDuration = new Histogram({
    name: "accord_store_write_duration_seconds",
    help: "Store writes (units of a transaction's changes), from handing them in to the commit, waiting for a group included.",
    buckets: STORE_BUCKETS,
    registers,
  });
  const commitDuration = new Histogram({
    name: "accord_store_commit_duration_seconds",
    help: "Database transactions of the group commit that committed, from start to commit.",
    buckets: STORE_BUCKETS,
    registers,
  });
  const commitUnits = new Histogram({
    name: "accord_store_commit_units",
    help: "Units (one caller's writes each) per committed database transaction: how much the group commit groups.",
    buckets: BATCH_BUCKETS,
    registers,
  });
  const commitFailures = new Counter({
    name: "accord_store_commit_failures_total",
    help: "Database transactions of the group commit that failed (a group's units are then retried one by one).",
    registers,
  });

  // RPCs.
  const rpcHandled = new Counter({
    name: "accord_rpc_handled_total",
    help: 'RPCs answered, by method ("accord.v1.CoordinatorService/Submit") and code ("OK", "INVALID_ARGUMENT", …); a stream counts when it ends.',
    labelNames: ["method", "code"],
    registers,
  });
  const rpcDuration = new Histogram({
    name: "accord_rpc_duration_seconds",
    help: "Unary RPCs, from the request to the answer, by method (a Submit with wait includes the wait).",
    labelNames: ["method"],
    buckets: RPC_BUCKETS,
    registers,
  });
  const rpcHandledOf = children((method, code) => rpcHandled.labels(method, code));
  const rpcDurationOf = new Map<string, Histogram.Internal<"method">>();

  // etcd and config.
  let registrationState: () => RegistrationState = () => "disabled";
  new Gauge({
    name: "accord_etcd_registration_state",
    help: "1 for the state of this coordinator's etcd registration (disabled, registering, registered, unavailable), 0 for the others.",
    labelNames: ["state"],
    registers,
    collect() {
      const current = registrationState();
      for (const state of REGISTRATION_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });
  const configReloads = new Counter({ name: "accord_config_reloads_total", help: "Config reloads (file change or SIGHUP), applied or refused.", registers });
  const configReloadFailures = new Counter({
    name: "accord_config_reload_failures_total",
    help: "Config reloads refused (an invalid file): the running config was kept.",
    registers,
  });
  const lastReloadOk = new Gauge({
    name: "accord_config_last_reload_successful",
    help: "0 when the last config reload was refused (the file on disk is not what runs), else 1.",
    registers,
  });
  lastReloadOk.set(1);

  // Retention.
  const retentionDeleted = new Counter({
    name: "accord_retention_deleted_total",
    help: "Rows retention deleted, by table: finished transactions older than retention.finishedAfterMs, and their branches, request ids and admin actions.",
    labelNames: ["table"],
    registers,
  });
  const retentionTables = (["transactions", "branches", "requests", "adminActions"] as const).map((key) => {
    const child = retentionDeleted.labels(key === "adminActions" ? "admin_actions" : key);
    child.inc(0);
    return [key, child] as const;
  });

  const hostLabel = createHostLabels(options.allowedTargetHosts);

  return {
    registry,
    contentType: registry.contentType,
    async render() {
      const [own, proc] = await Promise.all([registry.metrics(), processMetrics().metrics()]);
      return own + proc;
    },

    runStarted: () => running.inc(),
    runEnded: () => running.dec(),
    leaseTakenOver: () => takeovers.inc(),
    leaseLost: () => leasesLost.inc(),
    transactionFinished(mode, outcome, seconds) {
      finishedOf(mode, outcome).inc();
      durationOf.get(mode)?.observe(seconds);
    },

    hostLabel,
    branchCalled(op, outcome, host, seconds) {
      callDurationOf(op, outcome).observe(seconds);
      callsOf(host, outcome).inc();
    },

    rpcHandled(method, code, seconds) {
      rpcHandledOf(method, code).inc();
      if (seconds === undefined) return;
      let child = rpcDurationOf.get(method);
      if (!child) rpcDurationOf.set(method, (child = rpcDuration.labels(method)));
      child.observe(seconds);
    },

    store: {
      committed(units, results, seconds) {
        commitDuration.observe(seconds);
        commitUnits.observe(units.length);
        units.forEach((ops, u) =>
          ops.forEach((op, i) => {
            if (op.kind === "create" && (results[u]?.[i] as CreateResult | undefined)?.created) startedOf.get(op.transaction.mode)?.inc();
          }),
        );
      },
      failed() {
        commitFailures.inc();
      },
      answered(seconds) {
        writeDuration.observe(seconds);
      },
    },

    watchBacklog(store, logger) {
      let last: { at: number; read: Promise<{ stats: BacklogStats; at: number } | undefined> } | undefined;
      backlogSource = () => {
        const now = Date.now();
        if (last && now - last.at < BACKLOG_MAX_AGE_MS) return last.read;
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the backlog query took over ${BACKLOG_TIMEOUT_MS}ms`)), BACKLOG_TIMEOUT_MS);
        });
        const read = Promise.race([store.backlog(now), timeout])
          .then(
            (stats) => ({ stats, at: now }),
            (error: unknown) => {
              backlogFailures.inc();
              logger.warn({ err: error, store: store.kind }, "reading the backlog for /metrics failed; its gauges read NaN");
              return undefined;
            },
          )
          .finally(() => clearTimeout(timer));
        last = { at: now, read };
        return read;
      };
    },

    watchRegistration(state) {
      registrationState = state;
    },

    retentionDeleted(rows) {
      for (const [key, child] of retentionTables) child.inc(rows[key]);
    },

    configReloaded(ok) {
      configReloads.inc();
      if (!ok) configReloadFailures.inc();
      lastReloadOk.set(ok ? 1 : 0);
    },
  };
}
