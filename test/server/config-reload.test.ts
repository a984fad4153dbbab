import { readFileSync } from "node:fs";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { DestinationStream, Logger } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stringify as stringifyYaml } from "yaml";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { BranchOp, Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { ConfigError, loadConfig, type AccordConfig, type ConfigSources } from "../../server/config.js";
import { appliesLive, createLiveConfig, LIVE_KEYS, type LiveConfig, type ReloadResult } from "../../server/config/live-config.js";
import { CONFIG_OPTIONS } from "../../server/config/schema.js";
import { startCoordinator, type RunningCoordinator } from "../../server/coordinator.js";
import { createLogger } from "../../server/observe/logger.js";
import { TestBranchService } from "../support/branch-service.js";
import { FAST_ENGINE } from "../support/coordinator.js";
import { spawnCoordinator } from "../support/coordinator-process.js";
import { freePort } from "../support/free-port.js";
import { sqliteBackend } from "../support/stores.js";
import { gate, GiveUp, waitUntil } from "../support/wait-until.js";

// Hot reload against real files in a temp dir: the holder on its own, coordinators in this
// process reading a watched file, and the real entry point reloading on SIGHUP.

let dir: string;
const backend = sqliteBackend();
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "accord-reload-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await backend.cleanup();
});

let files = 0;
const newFile = () => join(dir, `accord-${files++}.yaml`);

/** Replaces the file the way editors and Kubernetes do: a new file renamed over the old one. */
async function writeConfig(file: string, content: object): Promise<void> {
  const temporary = `${file}.${files++}.tmp`;
  await writeFile(temporary, stringifyYaml(content));
  await rename(temporary, file);
}

type LogLine = Record<string, unknown> & { level: number; msg: string };

function captureLogs(): { lines: LogLine[]; stream: DestinationStream } {
  const lines: LogLine[] = [];
  return { lines, stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) } };
}

function holderFor(sources: ConfigSources): { live: LiveConfig; logger: Logger; lines: LogLine[]; results: ReloadResult[] } {
  const config = loadConfig(sources);
  const { lines, stream } = captureLogs();
  const logger = createLogger(config.log.level, stream);
  const live = createLiveConfig(config, sources, logger);
  const results: ReloadResult[] = [];
  live.onReload((result) => results.push(result));
  return { live, logger, lines, results };
}

describe("the live config holder", () => {
  it("applies a valid change: new snapshot, listeners told, the logger's level (children too) moved", async () => {
    const file = newFile();
    await writeConfig(file, { log: { level: "info" }, limits: { maxBranches: 10 } });
    const { live, logger, lines } = holderFor({ argv: ["--config", file], env: {} });
    const child = logger.child({ component: "made before the reload" });
    const before = live.current();
    const changes: string[][] = [];
    live.onChange((_next, _previous, changed) => changes.push([...changed]));

    await writeConfig(file, { log: { level: "debug" }, limits: { maxBranches: 20 } });
    const result = live.reload("test");

    expect(result).toEqual({ ok: true, trigger: "test", applied: ["log.level", "limits.maxBranches"], restartNeeded: [] });
    expect(live.current().limits.maxBranches).toBe(20);
    expect(live.view.limits.maxBranches).toBe(20);
    // A snapshot read earlier is never changed under its reader.
    expect(before.limits.maxBranches).toBe(10);
    expect(changes).toEqual([["log.level", "limits.maxBranches"]]);
    expect(logger.level).toBe("debug");
    expect(child.isLevelEnabled("debug")).toBe(true);
    expect(lines.filter((l) => l.msg.startsWith("config reloaded"))).toMatchObject([
      { level: 30, msg: "config reloaded: log.level, limits.maxBranches applied", applied: { "log.level": "debug", "limits.maxBranches": 20 }, trigger: "test" },
    ]);
  });

  it.each<[string, object, string]>([
    ["a value of the wrong type", { engine: { retryInitialMs: "soon" } }, "engine.retryInitialMs"],
    ["a value below its floor", { engine: { retryInitialMs: 5, minRetryIntervalMs: 100 } }, "engine.retryInitialMs"],
    ["an unknown key", { limits: { maxBranchez: 3 } }, "limits.maxBranchez"],
    ["a malformed allowlist entry", { security: { allowedTargetHosts: ["orders:99999"] } }, "security.allowedTargetHosts"],
  ])("changes nothing on %s; one error line names the key; the reload is counted as failed", async (_case, bad, key) => {
    const file = newFile();
    await writeConfig(file, { log: { level: "info" }, limits: { maxBranches: 10 } });
    const { live, logger, lines, results } = holderFor({ argv: ["--config", file], env: {} });
    const before = live.current();

    // Valid changes beside the bad value do not apply either.
    await writeConfig(file, { log: { level: "debug" }, limits: { maxBranches: 20 }, ...bad });
    const result = live.reload("test");

    expect(result.ok).toBe(false);
    expect(!result.ok && result.error).toBeInstanceOf(ConfigError);
    expect(!result.ok && (result.error as ConfigError).key).toBe(key);
    expect(live.current()).toBe(before);
    expect(logger.level).toBe("info");
    const errors = lines.filter((l) => l.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ key, trigger: "test" });
    expect(errors[0]!.msg).toContain(`config reload failed, nothing changed: config key "${key}"`);
    expect(results).toEqual([result]);
  });

  it("changes nothing when the file cannot be read, naming --config", async () => {
    const file = newFile();
    await writeConfig(file, { limits: { maxBranches: 10 } });
    const { live, lines } = holderFor({ argv: ["--config", file], env: {} });
    await writeFile(file, "limits: [unclosed\n");
    const result = live.reload("test");
    expect(result.ok).toBe(false);
    expect(live.current().limits.maxBranches).toBe(10);
    expect(lines.filter((l) => l.level >= 50)).toMatchObject([{ key: "--config" }]);
  });

  it("reports restart-only keys in one line and keeps their running values; live keys beside them apply", async () => {
    const file = newFile();
    const store = `file:${join(dir, "restart.db")}`;
    await writeConfig(file, { port: 7000, store, log: { level: "info" } });
    const { live, lines } = holderFor({ argv: ["--config", file], env: {} });

    await writeConfig(file, { port: 7001, store: `file:${join(dir, "other.db")}`, mysql: { poolSize: 3 }, log: { level: "warn" } });
    const result = live.reload("test");

    expect(result).toEqual({ ok: true, trigger: "test", applied: ["log.level"], restartNeeded: ["port", "store", "mysql.poolSize"] });
    expect(live.current()).toMatchObject({ port: 7000, store, mysql: { poolSize: 16 }, log: { level: "warn" } });
    const restart = lines.filter((l) => l.msg.includes("need a restart"));
    expect(restart).toMatchObject([{ level: 40, msg: "changes to port, store, mysql.poolSize need a restart; kept the running values" }]);
  });

  it("reads the same sources again: flags and environment still win over the file", async () => {
    const file = newFile();
    await writeConfig(file, { log: { level: "debug" }, limits: { maxBranches: 50, maxPayloadBytes: 100 } });
    const { live } = holderFor({ argv: ["--config", file, "--log-level", "warn"], env: { ACCORD_LIMITS_MAX_BRANCHES: "5" } });
    expect(live.current()).toMatchObject({ log: { level: "warn" }, limits: { maxBranches: 5, maxPayloadBytes: 100 } });

    await writeConfig(file, { log: { level: "trace" }, limits: { maxBranches: 60, maxPayloadBytes: 200 } });
    const result = live.reload("test");

    expect(result).toMatchObject({ ok: true, applied: ["limits.maxPayloadBytes"] });
    expect(live.current()).toMatchObject({ log: { level: "warn" }, limits: { maxBranches: 5, maxPayloadBytes: 200 } });
  });

  it("keeps a level set at run time until the file's log.level itself changes", async () => {
    const file = newFile();
    await writeConfig(file, { log: { level: "info" }, limits: { maxBranches: 10 } });
    const { live, logger } = holderFor({ argv: ["--config", file], env: {} });

    live.setLogLevel("debug");
    expect(logger.level).toBe("debug");
    expect(live.current().log.level).toBe("debug");

    await writeConfig(file, { log: { level: "info" }, limits: { maxBranches: 11 } });
    expect(live.reload("test")).toMatchObject({ ok: true, applied: ["limits.maxBranches"] });
    expect(logger.level).toBe("debug");

    await writeConfig(file, { log: { level: "error" }, limits: { maxBranches: 11 } });
    expect(live.reload("test")).toMatchObject({ ok: true, applied: ["log.level"] });
    expect(logger.level).toBe("error");
    expect(() => live.setLogLevel("loud" as never)).toThrow(ConfigError);
  });

  it("watches the file: a file renamed over it and one rewritten in place both apply", async () => {
    const file = newFile();
    await writeConfig(file, { limits: { maxBranches: 10 } });
    const { live } = holderFor({ argv: ["--config", file], env: {} });
    const unwatch = live.watch();
    try {
      await writeConfig(file, { limits: { maxBranches: 11 } });
      await waitUntil(async () => live.current().limits.maxBranches === 11, "the renamed file to be applied");
      await writeFile(file, stringifyYaml({ limits: { maxBranches: 12 } }));
      await waitUntil(async () => live.current().limits.maxBranches === 12, "the rewritten file to be applied");
    } finally {
      unwatch();
    }
  });

  it("names only real keys as live, and the README sorts every key into live or restart-only", () => {
    for (const entry of LIVE_KEYS) {
      expect(CONFIG_OPTIONS.some((o) => (entry.endsWith(".") ? o.key.startsWith(entry) : o.key === entry)), entry).toBe(true);
    }
    expect(appliesLive("log.level")).toBe(true);
    expect(appliesLive("retention.intervalMs")).toBe(true);
    expect(appliesLive("port")).toBe(false);
    expect(appliesLive("mysql.poolSize")).toBe(false);
    const readme = readFileSync("README.md", "utf8");
    const start = readme.indexOf("\n### Reload and log level\n");
    expect(start).toBeGreaterThan(readme.indexOf("\n## Operating Accord\n"));
    const rest = readme.slice(start + 1);
    const next = rest.slice(1).search(/\n#{2,3} /);
    const body = next < 0 ? rest : rest.slice(0, next + 1);
    const live = body.slice(body.indexOf("**Applies live**"), body.indexOf("**Needs a restart**"));
    const restart = body.slice(body.indexOf("**Needs a restart**"), body.indexOf("**An invalid file"));
    const section = (key: string) => `\`${key.slice(0, key.indexOf(".") + 1)}*\``;
    for (const { key } of CONFIG_OPTIONS) {
      const listed = (text: string) => text.includes(`\`${key}\``) || (key.includes(".") && text.includes(section(key)));
      expect(listed(appliesLive(key) ? live : restart), `README "Reload and log level" should list ${key} as ${appliesLive(key) ? "live" : "restart-only"}`).toBe(true);
      expect(listed(appliesLive(key) ? restart : live), `README lists ${key} on the wrong side`).toBe(false);
    }
  });
});


interface Running {
  coordinator: RunningCoordinator;
  client: Client<typeof CoordinatorService>;
  lines: LogLine[];
  results: ReloadResult[];
  /** Rewrites the file with the base settings plus `content` (its sections merged over them). */
  rewrite(content: Record<string, Record<string, unknown> | unknown>): Promise<void>;
}

const started: RunningCoordinator[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((c) => c.stop()));
});

/** A coordinator in this process whose config comes from a watched file, as `--config FILE` gives it. */
async function startFromFile(content: Record<string, unknown>): Promise<Running> {
  const file = newFile();
  const base = { store: await backend.freshUrl(), port: 0, shutdown: { graceMs: 2000 } };
  const compose = (extra: Record<string, unknown>) => {
    const engine = { ...FAST_ENGINE, ...(extra.engine as object | undefined) };
    return { ...base, ...extra, engine };
  };
  await writeConfig(file, compose(content));
  const sources = { argv: ["--config", file], env: {} };
  const config: AccordConfig = loadConfig(sources);
  const { lines, stream } = captureLogs();
  const logger = createLogger(config.log.level, stream);
  const live = createLiveConfig(config, sources, logger);
  const results: ReloadResult[] = [];
  live.onReload((result) => results.push(result));
  const coordinator = await startCoordinator(live, logger);
  started.push(coordinator);
  const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
  return { coordinator, client, lines, results, rewrite: (extra) => writeConfig(file, compose(extra as Record<string, unknown>)) };
}

const codeOf = (call: Promise<unknown>) => call.then(() => "ok" as const, (e: unknown) => ConnectError.from(e).code);
const failureOf = (call: Promise<unknown>) => call.then(() => undefined, (e: unknown) => ConnectError.from(e));
let gids = 0;
const gidOf = (name: string) => `${name}-${Date.now()}-${gids++}`;

describe("a coordinator reading a watched config file", () => {
  const svc = new TestBranchService();
  beforeAll(() => svc.listenHttp());
  afterAll(() => svc.close());

  it("turns debug logging on from the file", { timeout: 60_000 }, async () => {
    const { client, lines, rewrite } = await startFromFile({ log: { level: "info" } });
    const quiet = gidOf("quiet");
    const { transaction } = await client.submit({ gid: quiet, mode: Mode.SAGA, wait: true, steps: [{ action: svc.httpUrl("/ok"), compensate: svc.httpUrl("/undo") }] });
    expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
    expect(lines.filter((l) => l.level < 30)).toEqual([]);

    await rewrite({ log: { level: "debug" } });
    await waitUntil(async () => lines.some((l) => l.msg.startsWith("config reloaded: log.level applied")), "the reload to be logged");
    const loud = gidOf("loud");
    await client.submit({ gid: loud, mode: Mode.SAGA, wait: true, steps: [{ action: svc.httpUrl("/ok"), compensate: svc.httpUrl("/undo") }] });
    await waitUntil(async () => lines.some((l) => l.level === 20 && l.gid === loud), "a debug line about the second transaction");
  });

  it("accepts a target the allowlist gained, and refuses one it lost, stored transactions included", { timeout: 60_000 }, async () => {
    const { client, rewrite } = await startFromFile({ security: { allowedTargetHosts: ["localhost"] } });
    const steps = (path: string) => [{ action: svc.httpUrl(path), compensate: svc.httpUrl("/undo") }];
    const refused = await failureOf(client.submit({ gid: gidOf("before"), mode: Mode.SAGA, steps: steps("/ok") }));
    expect(refused?.code).toBe(Code.InvalidArgument);
    expect(refused?.rawMessage).toMatch(/^steps\[0\]\.action: .*not in the branch-target allowlist/);

    await rewrite({ security: { allowedTargetHosts: ["localhost", "127.0.0.1"] } });
    const after = gidOf("after");
    await waitUntil(async () => (await codeOf(client.submit({ gid: after, mode: Mode.SAGA, steps: steps("/ok") }))) === "ok", "Submit to accept the target");
    await waitUntil(async () => (await client.getTransaction({ gid: after })).transaction?.status === TransactionStatus.SUCCEEDED, "the transaction to succeed");

    // A transaction stored while its target was allowed is refused by the invoker once it is not.
    let up = false;
    svc.on("/flaky", () => ({ status: up ? 200 : 503 }));
    const stored = gidOf("stored");
    await client.submit({ gid: stored, mode: Mode.SAGA, steps: steps("/flaky") });
    await waitUntil(async () => svc.callsTo("/flaky", stored).length >= 2, "the flaky action to be retried");
    await rewrite({ security: { allowedTargetHosts: ["localhost"] } });
    await waitUntil(async () => {
      const { transaction } = await client.getTransaction({ gid: stored });
      const action = transaction?.branches.find((b) => b.op === BranchOp.ACTION);
      return action?.lastError.startsWith("target refused: host \"127.0.0.1\" is not in the branch-target allowlist");
    }, "the stored transaction's next call to be refused");
    const callsWhileRefused = svc.callsTo("/flaky", stored).length;

    up = true;
    await rewrite({ security: { allowedTargetHosts: ["localhost", "127.0.0.1"] } });
    await waitUntil(async () => (await client.getTransaction({ gid: stored })).transaction?.status === TransactionStatus.SUCCEEDED, "the stored transaction to succeed");
    expect(svc.callsTo("/flaky", stored).length).toBeGreaterThan(callsWhileRefused);
  });

  it("confines callers to a tenant namespace read from the file", { timeout: 60_000 }, async () => {
    const { client, rewrite } = await startFromFile({ security: { tenantPrefixes: [{ identity: "*", prefixes: ["alpha-"] }] } });
    expect(await codeOf(client.getTransaction({ gid: "alpha-1" }))).toBe(Code.NotFound);
    expect(await codeOf(client.getTransaction({ gid: "beta-1" }))).toBe(Code.PermissionDenied);

    await rewrite({ security: { tenantPrefixes: [{ identity: "*", prefixes: ["beta-"] }] } });
    await waitUntil(async () => (await codeOf(client.getTransaction({ gid: "beta-1" }))) === Code.NotFound, "beta- to be the namespace");
    expect(await codeOf(client.getTransaction({ gid: "alpha-1" }))).toBe(Code.PermissionDenied);
  });

  it("applies a new retry default to a transaction already retrying", { timeout: 60_000 }, async () => {
    const { client, rewrite } = await startFromFile({ engine: { retryMaxAttempts: 1000 } });
    svc.on("/down", () => ({ status: 503 }));
    const gid = gidOf("down");
    await client.submit({ gid, mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/down"), compensate: svc.httpUrl("/undo") }] });
    const action = async () => (await client.getTransaction({ gid })).transaction!;
    const retrying = await waitUntil(async () => {
      const tx = await action();
      return (tx.branches.find((b) => b.op === BranchOp.ACTION)?.attempts ?? 0) >= 3 ? tx : undefined;
    }, "three attempts");
    expect(retrying.stalled).toBe(false);

    await rewrite({ engine: { retryMaxAttempts: 2 } });
    await waitUntil(async () => (await action()).stalled, "the transaction to be marked stalled under the new default");
  });

  it("lets a call waiting for its host's bulkhead in when maxCallsPerHost grows", { timeout: 60_000 }, async () => {
    const { client, rewrite } = await startFromFile({ engine: { maxCallsPerHost: 1 } });
    const held = gate();
    svc.on("/held-a", () => ({ status: 200, until: held.opened }));
    svc.on("/held-b", () => ({ status: 200, until: held.opened }));
    const gid = gidOf("bulkhead");
    try {
      await client.submit({
        gid,
        mode: Mode.SAGA,
        options: { concurrent: true },
        steps: [
          { action: svc.httpUrl("/held-a"), compensate: svc.httpUrl("/undo") },
          { action: svc.httpUrl("/held-b"), compensate: svc.httpUrl("/undo") },
        ],
      });
      const arrived = () => svc.calls.filter((c) => c.gid === gid).length;
      await waitUntil(async () => arrived() >= 1, "the first call");
      // The first call holds the host's only slot until the gate opens.
      expect(arrived()).toBe(1);

      await rewrite({ engine: { maxCallsPerHost: 2 } });
      await waitUntil(async () => arrived() === 2, "the waiting call to go in beside the held one");
    } finally {
      held.open();
    }
    await waitUntil(async () => (await client.getTransaction({ gid })).transaction?.status === TransactionStatus.SUCCEEDED, "the transaction to succeed");
  });

  it("changes nothing on an invalid file: the error names the key, the reload is counted as failed", { timeout: 60_000 }, async () => {
    const { coordinator, client, lines, results, rewrite } = await startFromFile({ security: { tenantPrefixes: [{ identity: "*", prefixes: ["alpha-"] }] } });
    const before = coordinator.config.current();

    await rewrite({ security: { tenantPrefixes: [{ identity: "*", prefixes: ["beta-"] }] }, engine: { maxCallsPerHost: 0 } });
    const error = await waitUntil(async () => lines.find((l) => l.level === 50 && l.msg.startsWith("config reload failed")), "the failed reload to be logged");

    expect(error).toMatchObject({ key: "engine.maxCallsPerHost" });
    expect(error.msg).toContain('config key "engine.maxCallsPerHost"');
    expect(results.map((r) => r.ok)).toEqual([false]);
    const metrics = await coordinator.metrics.render();
    expect(metrics).toMatch(/^accord_config_reloads_total 1$/m);
    expect(metrics).toMatch(/^accord_config_reload_failures_total 1$/m);
    expect(coordinator.config.current()).toBe(before);
    expect(await codeOf(client.getTransaction({ gid: "beta-1" }))).toBe(Code.PermissionDenied);
    expect(await codeOf(client.getTransaction({ gid: "alpha-1" }))).toBe(Code.NotFound);
  });

  it("reports a changed port as needing a restart and keeps serving on the old one", { timeout: 60_000 }, async () => {
    const [port, other] = [await freePort(), await freePort()];
    const { coordinator, client, lines, rewrite } = await startFromFile({ port });
    expect(coordinator.port).toBe(port);

    await rewrite({ port: other });
    await waitUntil(async () => lines.some((l) => l.msg.includes("need a restart")), "the restart-only change to be reported");

    expect(lines.filter((l) => l.msg.includes("need a restart"))).toMatchObject([
      { level: 40, msg: "changes to port need a restart; kept the running values", keys: ["port"] },
    ]);
    expect(coordinator.config.current().port).toBe(port);
    expect((await client.newGid({})).gid).toBeTruthy();
  });
});

it("the entry point reloads the config file on SIGHUP", { timeout: 120_000 }, async () => {
  const file = newFile();
  const port = await freePort();
  const content = (prefix: string) => ({
    port,
    store: `file:${join(dir, "sighup.db")}`,
    log: { level: "info" },
    security: { tenantPrefixes: [{ identity: "*", prefixes: [prefix] }] },
  });
  await writeConfig(file, content("alpha-"));
  const main = spawnCoordinator(["--config", file]);
  try {
    const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
    const stdoutLines = () =>
      main
        .output()
        .stdout.split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as LogLine);
    const alive = () => {
      if (main.child.exitCode !== null || main.child.signalCode !== null) throw new GiveUp(`the coordinator exited: ${main.output().stderr.slice(-2000)}`);
    };
    await waitUntil(async () => (alive(), client.newGid({})), "the coordinator to serve", 60_000);
    expect(await codeOf(client.getTransaction({ gid: "beta-1" }))).toBe(Code.PermissionDenied);

    // Unchanged file: the signal alone is a reload, which says so.
    main.child.kill("SIGHUP");
    await waitUntil(async () => (alive(), stdoutLines().some((l) => l.trigger === "SIGHUP" && l.msg.startsWith("config reloaded"))), "the SIGHUP reload to be logged");

    await writeConfig(file, content("beta-"));
    main.child.kill("SIGHUP");
    await waitUntil(async () => (alive(), (await codeOf(client.getTransaction({ gid: "beta-1" }))) === Code.NotFound), "beta- to be the namespace");
    expect(await codeOf(client.getTransaction({ gid: "alpha-1" }))).toBe(Code.PermissionDenied);
    // Without TLS a SIGHUP is a config reload only, not a failed certificate reload.
    expect(stdoutLines().filter((l) => l.level >= 50)).toEqual([]);
  } finally {
    main.child.kill("SIGTERM");
    await main.exited;
  }
});
