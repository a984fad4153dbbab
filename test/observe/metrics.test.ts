import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { BRANCH_OPS, MODES } from "../../server/store/index.js";
import { branchRecord, txRecord } from "../store/fixtures.js";
import { TestBranchService, type BranchCallRecord } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { freePort } from "../support/free-port.js";
import { scrape, type Sample, type Scrape } from "../support/prometheus.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// Known transactions through a real coordinator, read back from GET /metrics: the values move
// by exactly what was run, and no label ever carries a gid, a URL or anything else a caller
// chooses (the series stay the same however much traffic goes through).

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const run = `${Date.now()}`;
const gids: string[] = [];
const gid = (name: string) => {
  const g = `metrics-${name}-${run}-${gids.length}`;
  gids.push(g);
  return g;
};

/** Every accord_ family and the label names its series may have ("le" for histogram buckets). */
const FAMILIES: Record<string, readonly string[]> = {
  accord_build_info: ["version"],
  accord_transactions_started_total: ["mode"],
  accord_transactions_finished_total: ["mode", "outcome"],
  accord_transaction_duration_seconds: ["mode", "le"],
  accord_running_transactions: [],
  accord_lease_takeovers_total: [],
  accord_leases_lost_total: [],
  accord_branch_call_duration_seconds: ["op", "outcome", "le"],
  accord_branch_calls_total: ["host", "outcome"],
  accord_backlog_due_transactions: [],
  accord_backlog_oldest_due_age_seconds: [],
  accord_stalled_transactions: [],
  accord_unfinished_transactions: [],
  accord_backlog_query_failures_total: [],
  accord_store_write_duration_seconds: ["le"],
  accord_store_commit_duration_seconds: ["le"],
  accord_store_commit_units: ["le"],
  accord_store_commit_failures_total: [],
  accord_rpc_handled_total: ["method", "code"],
  accord_rpc_duration_seconds: ["method", "le"],
  accord_etcd_registration_state: ["state"],
  accord_config_reloads_total: [],
  accord_config_reload_failures_total: [],
  accord_config_last_reload_successful: [],
  accord_retention_deleted_total: ["table"],
};

const CALL_OUTCOMES = ["success", "failure", "ongoing", "error"];
const CODES = [
  "OK", "CANCELED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
];
/** The values each bounded label may take. */
const VALUES: Record<string, (value: string) => boolean> = {
  mode: (v) => (MODES as readonly string[]).includes(v),
  outcome: (v) => ["succeeded", "failed", ...CALL_OUTCOMES].includes(v),
  op: (v) => [...BRANCH_OPS, "query"].includes(v),
  host: (v) => ["127.0.0.1", "localhost", "::1", "other"].includes(v),
  code: (v) => CODES.includes(v),
  method: (v) => /^(accord\.v1\.(Coordinator|Admin)Service|grpc\.health\.v1\.Health|grpc\.reflection\.v1(alpha)?\.ServerReflection)\/[A-Za-z]+$/.test(v),
  state: (v) => ["disabled", "registering", "registered", "unavailable"].includes(v),
  table: (v) => ["transactions", "branches", "requests", "admin_actions"].includes(v),
  le: (v) => v === "+Inf" || Number.isFinite(Number(v)),
  version: (v) => /^\d+\.\d+\.\d+/.test(v),
};
/** Far above what the fixed label values can make (the largest: op × outcome × 15 buckets). */
const MAX_SERIES_PER_FAMILY = 500;

const seriesKey = (s: Sample) => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;

describe("GET /metrics", () => {
  const backend = sqliteBackend();
  const svc = new TestBranchService();
  let coordinator: RunningCoordinator;
  let client: Client<typeof CoordinatorService>;
  const metricsUrl = () => `${coordinator.url}/metrics`;

  beforeAll(async () => {
    await svc.listenHttp();
    await svc.listenGrpc(["Card"]);
    svc.on("/refuse", () => ({ status: 409 }));
    svc.on("/flaky", (_call, n) => (n === 0 ? { status: 500, body: "once" } : { status: 200 }));
    svc.on("/down", () => ({ status: 500, body: "down" }));
    coordinator = await startTestCoordinator(await backend.freshUrl(), { ops: { port: await freePort() } });
    client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
  });
  afterAll(async () => {
    await coordinator?.stop();
    await svc.close();
    await backend.cleanup();
  });

  const step = (action: string, compensate = "/undo") => ({ action: svc.httpUrl(action), compensate: svc.httpUrl(compensate), payload: json({ action }) });
  const submitSaga = (g: string, steps: ReturnType<typeof step>[], options = {}, wait = true) =>
    client.submit({ gid: g, mode: Mode.SAGA, steps, options, wait }, { timeoutMs: 20_000 });
  const delta = (before: Scrape, after: Scrape, name: string, labels: Record<string, string> = {}) => after.sum(name, labels) - before.sum(name, labels);

  it("is served on the main port and on the ops listener, in the Prometheus text format", async () => {
    for (const url of [`${coordinator.url}/metrics`, `${coordinator.opsUrl}/metrics`]) {
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      expect(text).toMatch(/^# HELP accord_build_info /m);
      // Process and Node.js metrics under their usual names.
      expect(text).toMatch(/^process_cpu_seconds_total /m);
      expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    }
    expect((await fetch(`${coordinator.opsUrl}/metrics`, { method: "POST" })).status).toBe(404);
  });

  it("counts known transactions, branch calls and RPCs exactly", async () => {
    const before = await scrape(metricsUrl());
    const succeeded = [gid("ok"), gid("ok"), gid("ok")];
    const refused = [gid("refused"), gid("refused")];
    const retried = gid("retried");
    for (const g of succeeded) expect((await submitSaga(g, [step("/ok-a"), step("/ok-b")])).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
    for (const g of refused) expect((await submitSaga(g, [step("/ok-a"), step("/refuse")])).transaction?.status).toBe(TransactionStatus.FAILED);
    const retry = { retry: { initialInterval: durationFromMs(20), maxInterval: durationFromMs(50) } };
    expect((await submitSaga(retried, [step("/flaky")], retry)).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
    await expect(client.submit({ gid: "not a gid!", mode: Mode.SAGA, steps: [step("/ok-a")] })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(client.getTransaction({ gid: gid("missing") })).rejects.toSatisfy((e) => e instanceof ConnectError && e.code === Code.NotFound);

    // The Submit replies may come a moment before the run has counted its end.
    const after = await waitUntil(
      async () => {
        const now = await scrape(metricsUrl());
        return delta(before, now, "accord_transactions_finished_total") === 6 && now.value("accord_running_transactions") === 0 ? now : undefined;
      },
      "the six transactions to be counted as finished",
    );
    expect(delta(before, after, "accord_transactions_started_total", { mode: "saga" })).toBe(6);
    expect(delta(before, after, "accord_transactions_finished_total", { mode: "saga", outcome: "succeeded" })).toBe(4);
    expect(delta(before, after, "accord_transactions_finished_total", { mode: "saga", outcome: "failed" })).toBe(2);
    expect(delta(before, after, "accord_transaction_duration_seconds_count", { mode: "saga" })).toBe(6);
    for (const mode of ["tcc", "msg", "xa"]) expect(delta(before, after, "accord_transactions_started_total", { mode })).toBe(0);

    // Branch calls: what the branch service saw, by outcome and op.
    const seen = svc.calls.filter((c) => [...succeeded, ...refused, retried].includes(c.gid));
    const outcomeOf = (c: BranchCallRecord) => (c.name === "/refuse" ? "failure" : c.name === "/flaky" && seen.indexOf(c) === seen.findIndex((d) => d.name === "/flaky") ? "error" : "success");
    const count = (outcome: string, op?: string) => seen.filter((c) => outcomeOf(c) === outcome && (op === undefined || c.op === op)).length;
    expect(count("error")).toBe(1);
    expect(count("failure")).toBe(2);
    for (const outcome of ["success", "failure", "error"]) {
      expect(delta(before, after, "accord_branch_calls_total", { host: "127.0.0.1", outcome })).toBe(count(outcome));
      for (const op of ["action", "compensate"]) {
        expect(delta(before, after, "accord_branch_call_duration_seconds_count", { op, outcome })).toBe(count(outcome, op));
      }
    }
    expect(count("success", "compensate")).toBeGreaterThanOrEqual(2);

    // RPCs by method and code; unary ones are timed.
    const submit = "accord.v1.CoordinatorService/Submit";
    expect(delta(before, after, "accord_rpc_handled_total", { method: submit, code: "OK" })).toBe(6);
    expect(delta(before, after, "accord_rpc_handled_total", { method: submit, code: "INVALID_ARGUMENT" })).toBe(1);
    expect(delta(before, after, "accord_rpc_handled_total", { method: "accord.v1.CoordinatorService/GetTransaction", code: "NOT_FOUND" })).toBe(1);
    expect(delta(before, after, "accord_rpc_duration_seconds_count", { method: submit })).toBe(7);

    // The store: every transaction's create and end went through the group commit.
    expect(delta(before, after, "accord_store_write_duration_seconds_count")).toBeGreaterThanOrEqual(12);
    expect(delta(before, after, "accord_store_commit_units_sum")).toBe(delta(before, after, "accord_store_write_duration_seconds_count"));
    expect(after.value("accord_store_commit_failures_total")).toBe(0);
    expect(after.value("accord_etcd_registration_state", { state: "disabled" })).toBe(1);
    expect(after.value("accord_etcd_registration_state", { state: "registered" })).toBe(0);
    expect(after.value("accord_unfinished_transactions")).toBe(0);
    expect(after.value("accord_backlog_due_transactions")).toBe(0);
    expect(after.value("accord_backlog_oldest_due_age_seconds")).toBe(0);
  });

  it("shows a stalled transaction, the backlog, and a takeover of a dead coordinator's lease", async () => {
    const before = await scrape(metricsUrl());
    const stalled = gid("stalled");
    const retry = { retry: { maxAttempts: 2, initialInterval: durationFromMs(20), maxInterval: durationFromMs(100) } };
    expect((await submitSaga(stalled, [step("/down")], retry, false)).transaction?.status).toBe(TransactionStatus.SUBMITTED);
    const seen = await waitUntil(
      async () => {
        const now = await scrape(metricsUrl());
        return now.value("accord_stalled_transactions") === 1 ? now : undefined;
      },
      "the stalled transaction on /metrics",
    );
    expect(seen.value("accord_unfinished_transactions")).toBe(1);
    // Due or not depends on where its retry timer is; either way the gauges hold numbers.
    expect(seen.value("accord_backlog_due_transactions")).toBeGreaterThanOrEqual(0);
    expect(seen.value("accord_backlog_oldest_due_age_seconds")).toBeGreaterThanOrEqual(0);
    expect(delta(before, seen, "accord_branch_calls_total", { outcome: "error" })).toBeGreaterThanOrEqual(2);

    // A transaction left running by a coordinator that died: its lease ran out, this one claims it.
    const orphan = gid("orphan");
    const past = Date.now() - 60_000;
    const rows = [branchRecord(orphan, 1, "action", { target: svc.httpUrl("/ok-a") }), branchRecord(orphan, 1, "compensate", { target: svc.httpUrl("/undo") })];
    await coordinator.store.write([
      { kind: "create", transaction: txRecord(orphan, { createdAt: past, nextAttemptAt: past, owner: "dead-coordinator", leaseUntil: past + 1000, leaseGeneration: 1 }), branches: rows },
    ]);
    const after = await waitUntil(
      async () => {
        const { transaction } = await client.getTransaction({ gid: orphan });
        if (transaction?.status !== TransactionStatus.SUCCEEDED) return undefined;
        const now = await scrape(metricsUrl());
        return delta(before, now, "accord_transactions_finished_total", { outcome: "succeeded" }) === 1 ? now : undefined;
      },
      "the orphan to be taken over and finished",
    );
    expect(delta(before, after, "accord_lease_takeovers_total")).toBe(1);
    expect(after.value("accord_leases_lost_total")).toBe(0);
    // Its create went through this coordinator's store, so it counts as started here too.
    expect(delta(before, after, "accord_transactions_started_total", { mode: "saga" })).toBe(2);
    expect(after.value("accord_stalled_transactions")).toBe(1);
  });

  it("counts an MSG that Abort ends before its Submit, which no run drives", async () => {
    const before = await scrape(metricsUrl());
    const msg = gid("msg-aborted");
    await client.begin({ gid: msg, mode: Mode.MSG, steps: [step("/ok-a")].map(({ action, payload }) => ({ action, payload })), queryPrepared: svc.httpUrl("/q") });
    expect((await client.abort({ gid: msg, reason: "local transaction rolled back" })).transaction?.status).toBe(TransactionStatus.FAILED);
    const after = await scrape(metricsUrl());
    expect(delta(before, after, "accord_transactions_started_total", { mode: "msg" })).toBe(1);
    expect(delta(before, after, "accord_transactions_finished_total", { mode: "msg", outcome: "failed" })).toBe(1);
  });

  it("keeps every family's labels to fixed values: the series do not grow with traffic", async () => {
    const paths: string[] = [];
    const batch = async (tag: string, n: number) => {
      for (let i = 0; i < n; i++) {
        // Every transaction has its own gid and its own target paths, over HTTP and gRPC.
        const path = `/card/${tag}/${i}`;
        paths.push(path);
        const steps = [step(path, `${path}/undo`), { action: svc.grpcUrl("Card"), compensate: svc.grpcUrl("Card"), payload: json({ i }) }];
        expect((await submitSaga(gid(`card-${tag}`), steps)).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      }
      // Paths no route serves, with gids in them: 404s that must not become label values.
      for (const path of [`/accord.v1.CoordinatorService/${gid("nope")}`, `/${gid("x")}/metrics`]) {
        expect((await fetch(`${coordinator.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status).toBe(404);
      }
      await client.getTransaction({ gid: gids.at(-3)! });
      return waitUntil(async () => {
        const now = await scrape(metricsUrl());
        return now.value("accord_running_transactions") === 0 ? now : undefined;
      }, `batch ${tag} to finish running`);
    };
    const first = await batch("a", 5);
    const second = await batch("b", 25);

    for (const current of [first, second]) {
      const families = new Map<string, Sample[]>();
      for (const sample of current.samples) {
        const family = current.familyOf(sample);
        families.set(family, [...(families.get(family) ?? []), sample]);
        for (const [label, value] of Object.entries(sample.labels)) {
          // Nothing a caller chose: no gid, no target URL or path, no host:port.
          expect(value, `${sample.name} ${label}`).not.toMatch(/:\/\/|metrics-|\/card\//);
          for (const g of gids) expect(value).not.toContain(g);
          if (family.startsWith("accord_")) expect(VALUES[label]?.(value), `${family} {${label}="${value}"}`).toBe(true);
        }
      }
      expect([...families.keys()].filter((f) => f.startsWith("accord_")).sort()).toEqual(Object.keys(FAMILIES).sort());
      for (const [family, samples] of families) {
        expect(samples.length, family).toBeLessThanOrEqual(MAX_SERIES_PER_FAMILY);
        const allowed = FAMILIES[family];
        if (allowed) for (const s of samples) expect(Object.keys(s.labels).every((l) => allowed.includes(l)), `${family} ${JSON.stringify(s.labels)}`).toBe(true);
      }
    }
    // Five times the traffic, with new gids and paths: not one new accord_ series.
    const keys = (s: Scrape) => s.samples.filter((x) => x.name.startsWith("accord_")).map(seriesKey).sort();
    expect(keys(second)).toEqual(keys(first));
    expect(delta(first, second, "accord_transactions_started_total", { mode: "saga" })).toBe(25);
    expect(delta(first, second, "accord_branch_calls_total", { host: "127.0.0.1", outcome: "success" })).toBeGreaterThanOrEqual(50);
    expect(paths).toHaveLength(30);
  });

  it("counts config reloads and refused ones, for the reload to report", async () => {
    const before = await scrape(metricsUrl());
    coordinator.metrics.configReloaded(true);
    coordinator.metrics.configReloaded(false);
    const failed = await scrape(metricsUrl());
    expect(delta(before, failed, "accord_config_reloads_total")).toBe(2);
    expect(delta(before, failed, "accord_config_reload_failures_total")).toBe(1);
    expect(failed.value("accord_config_last_reload_successful")).toBe(0);
    coordinator.metrics.configReloaded(true);
    expect((await scrape(metricsUrl())).value("accord_config_last_reload_successful")).toBe(1);
  });
});
