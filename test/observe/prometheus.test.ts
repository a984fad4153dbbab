import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { promisify } from "node:util";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { createMetrics } from "../../server/observe/metrics.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { freePort } from "../support/free-port.js";
import { parseExposition, startPrometheus, type ThrowawayPrometheus } from "../support/prometheus.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// docs/alerts.yml in a real Prometheus (Debian's `prometheus`) scraping a running coordinator:
// a transaction made to stall fires AccordStalledTransactions, and stopping the coordinator
// fires AccordNoCoordinatorUp. The expressions are the shipped ones; only `for:` is shortened,
// so the test does not wait out minutes.

const RULES = new URL("../../docs/alerts.yml", import.meta.url);
const RULE_TESTS = new URL("../../docs/alerts.test.yml", import.meta.url);
const README = new URL("../../README.md", import.meta.url);
const DASHBOARD = new URL("../../docs/grafana-dashboard.json", import.meta.url);
const run = promisify(execFile);

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  annotations: Record<string, string>;
}
interface Alert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}
interface RuleGroups {
  groups: { rules: { name: string; health: string; lastError?: string; state: string; alerts: Alert[] }[] }[];
}

const loadRules = async () => (parse(await readFile(RULES, "utf8")) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

interface Dashboard {
  panels: { title: string; type: string; targets?: { expr: string; datasource: { uid: string } }[] }[];
}
const dashboardQueries = async () =>
  (JSON.parse(await readFile(DASHBOARD, "utf8")) as Dashboard).panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));
/** A dashboard query as Grafana sends it for job "accord", every coordinator, a 1m rate window. */
const expand = (expr: string) => expr.replaceAll("$job", "accord").replaceAll("$instance", ".*").replaceAll("$__rate_interval", "1m");

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchorOf = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");

describe("docs/alerts.yml", () => {
  it("passes promtool check rules and its unit tests (docs/alerts.test.yml)", async () => {
    const check = await run("promtool", ["check", "rules", RULES.pathname]);
    expect(check.stdout).toMatch(/SUCCESS: 6 rules found/);
    const tests = await run("promtool", ["test", "rules", RULE_TESTS.pathname]);
    expect(tests.stdout).toMatch(/SUCCESS/);
  });

  it("gives every alert a summary, a description and a runbook that is a README anchor", async () => {
    const readme = await readFile(README, "utf8");
    const anchors = new Set([...readme.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!)));
    const rules = await loadRules();
    expect(rules.map((r) => r.alert).sort()).toEqual([
      "AccordBacklogAgeHigh",
      "AccordBranchErrorRatioHigh",
      "AccordConfigReloadFailed",
      "AccordNoCoordinatorUp",
      "AccordStalledTransactions",
      "AccordStoreWriteLatencyHigh",
    ]);
    for (const rule of rules) {
      expect(rule.annotations.summary, rule.alert).toBeTruthy();
      expect(rule.annotations.description, rule.alert).toBeTruthy();
      const runbook = /^README\.md#(.+)$/.exec(rule.annotations.runbook ?? "");
      expect(runbook?.[1], `${rule.alert} runbook`).toBe(rule.alert.toLowerCase());
      expect(anchors.has(runbook![1]!), `README has a heading for #${runbook![1]}`).toBe(true);
    }
  });
});

describe("docs/grafana-dashboard.json", () => {
  it("queries only metrics a coordinator exposes, through the dashboard's data source", async () => {
    const metrics = createMetrics({ version: "0.0.0", allowedTargetHosts: () => [] });
    const exposed = parseExposition(await metrics.render());
    const names = new Set(["up"]);
    for (const [family, type] of exposed.types) {
      names.add(family);
      if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(family + suffix);
    }
    const queries = await dashboardQueries();
    expect(queries.length).toBeGreaterThan(20);
    for (const query of queries) {
      expect(query.datasource.uid, query.panel).toBe("${datasource}");
      for (const [name] of query.expr.matchAll(/\b(?:accord|process|nodejs)_[a-z0-9_]+|\bup\b(?=\{)/g)) expect(names.has(name), `${query.panel}: ${name}`).toBe(true);
    }
    // Every family shows somewhere, except the build info the variables read.
    const used = queries.map((q) => q.expr).join("\n");
    for (const [family] of exposed.types) if (family.startsWith("accord_") && family !== "accord_build_info") expect(used, family).toContain(family);
  });
});

describe("the alert rules in a real Prometheus", () => {
  const backend = sqliteBackend();
  const svc = new TestBranchService();
  let coordinator: RunningCoordinator;
  let prometheus: ThrowawayPrometheus | undefined;

  beforeAll(async () => {
    await svc.listenHttp();
    svc.on("/down", () => ({ status: 500, body: "down" }));
    coordinator = await startTestCoordinator(await backend.freshUrl(), { ops: { port: await freePort() } });
    const rules = await loadRules();
    const quick = { groups: [{ name: "accord", rules: rules.map((rule) => ({ ...rule, for: "0s" })) }] };
    prometheus = await startPrometheus({
      targets: [new URL(coordinator.opsUrl!).host],
      rules: { "alerts.yml": stringify(quick) },
      interval: "1s",
    });
  });
  afterAll(async () => {
    await prometheus?.stop();
    await coordinator?.stop();
    await svc.close();
    await backend.cleanup();
  });

  const rulesNow = async () => (await prometheus!.api<RuleGroups>("rules?type=alert")).groups.flatMap((g) => g.rules);
  const firing = async (name: string) => (await rulesNow()).find((r) => r.name === name)?.alerts.filter((a) => a.state === "firing") ?? [];

  it("runs every query of docs/grafana-dashboard.json without error", async () => {
    for (const query of await dashboardQueries()) {
      await expect(prometheus!.api(`query?query=${encodeURIComponent(expand(query.expr))}`), query.panel).resolves.toBeDefined();
    }
  });

  it("fires AccordStalledTransactions for a transaction made to stall, and AccordNoCoordinatorUp once it stops", { timeout: 120_000 }, async () => {
    // Scraped and evaluated, every rule healthy, nothing firing. (Before the first scrape, `up`
    // is absent and AccordNoCoordinatorUp, its `for:` removed, fires at once; the scrape ends it.)
    let rules: Awaited<ReturnType<typeof rulesNow>> = [];
    await waitUntil(
      async () => {
        rules = await rulesNow();
        return rules.length === 6 && rules.every((r) => r.health === "ok" && r.state === "inactive");
      },
      () => `every rule evaluated without error, none firing: ${JSON.stringify(rules.map((r) => [r.name, r.health, r.state, r.lastError]))}`,
      30_000,
    );
    expect((await prometheus!.api<{ result: unknown[] }>("query?query=accord_build_info")).result).toHaveLength(1);
    expect(await firing("AccordStalledTransactions")).toEqual([]);
    expect(await firing("AccordNoCoordinatorUp")).toEqual([]);

    const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    const retry = { maxAttempts: 2, initialInterval: durationFromMs(20), maxInterval: durationFromMs(200) };
    const { transaction } = await client.submit({
      gid: `prometheus-stalled-${Date.now()}`,
      mode: Mode.SAGA,
      steps: [{ action: svc.httpUrl("/down"), compensate: svc.httpUrl("/undo"), payload: new TextEncoder().encode("{}") }],
      options: { retry },
    });
    expect(transaction?.status).toBe(TransactionStatus.SUBMITTED);

    const [stalled] = await waitUntil(async () => {
      const alerts = await firing("AccordStalledTransactions");
      return alerts.length > 0 ? alerts : undefined;
    }, "AccordStalledTransactions to fire", 60_000);
    expect(stalled?.labels).toMatchObject({ alertname: "AccordStalledTransactions", job: "accord", severity: "warning" });
    expect(await firing("AccordNoCoordinatorUp")).toEqual([]);

    await coordinator.stop();
    const [down] = await waitUntil(async () => {
      const alerts = await firing("AccordNoCoordinatorUp");
      return alerts.length > 0 ? alerts : undefined;
    }, "AccordNoCoordinatorUp to fire", 60_000);
    expect(down?.labels).toMatchObject({ alertname: "AccordNoCoordinatorUp", job: "accord", severity: "critical" });
  });
});
