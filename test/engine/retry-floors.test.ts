import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode } from "../../gen/accord/v1/transaction_pb.js";
import { defaultConfig, loadConfig } from "../../server/config.js";
import { effectivePolicy } from "../../server/engine/policy.js";
import { openStore } from "../../server/store/index.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";
import { branchRecord, txRecord } from "../store/fixtures.js";

// retry.initial_interval = max_interval = 1ms against a target answering 500 once made 1,048
// calls in 5 s from one Submit. Floors now hold for requests, for the config, and for rows
// stored before the floors existed.

const FLOORS = { minRetryIntervalMs: 100, minOngoingIntervalMs: 100, minBranchTimeoutMs: 100 };
const svc = new TestBranchService();
const backend = sqliteBackend();
beforeAll(() => svc.listenHttp());
afterAll(async () => {
  await svc.close();
  await backend.cleanup();
});

describe("floors on retry intervals, ongoing interval and branch timeout", () => {
  it("refuses requests below a floor, naming the field and the config key", async () => {
    const coordinator = await startTestCoordinator(await backend.freshUrl(), { engine: FLOORS });
    try {
      const client = createClient(CoordinatorService, createConnectTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }));
      const steps = [{ action: svc.httpUrl("/x"), compensate: svc.httpUrl("/y") }];
      const cases: [Record<string, unknown>, string, string][] = [
        [{ retry: { initialInterval: { nanos: 1_000_000 } } }, "options.retry.initial_interval", "engine.minRetryIntervalMs"],
        [{ retry: { maxInterval: { nanos: 1_000_000 } } }, "options.retry.max_interval", "engine.minRetryIntervalMs"],
        [{ retry: { ongoingInterval: { nanos: 50_000_000 } } }, "options.retry.ongoing_interval", "engine.minOngoingIntervalMs"],
        [{ branchTimeout: { nanos: 1 } }, "options.branch_timeout", "engine.minBranchTimeoutMs"],
      ];
      for (const [options, field, key] of cases) {
        const error = await client.submit({ gid: `floor-${field.replace(/\W/g, "")}`, mode: Mode.SAGA, steps, options }).catch((e: unknown) => ConnectError.from(e));
        expect(error, field).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code, field).toBe(Code.InvalidArgument);
        expect((error as ConnectError).rawMessage, field).toMatch(new RegExp(`^${field.replace(/\./g, "\\.")}: .*at least .*${key}`));
      }
      // At the floor, and zero (the default), are accepted.
      const ok = await client.submit({ gid: "floor-ok", mode: Mode.SAGA, steps, options: { retry: { initialInterval: { nanos: 100_000_000 } }, branchTimeout: { seconds: 0n } } });
      expect(ok.transaction?.gid).toBe("floor-ok");
    } finally {
      await coordinator.stop();
    }
  });

  it("refuses a configuration whose own defaults are below a floor, naming the key", () => {
    expect(() => loadConfig({ argv: ["--engine-retry-initial-ms", "1"], env: {} })).toThrow(/config key "engine\.retryInitialMs".*at least engine\.minRetryIntervalMs/);
    expect(() => loadConfig({ argv: ["--engine-retry-max-ms", "50"], env: {} })).toThrow(/"engine\.retryMaxMs"/);
    expect(() => loadConfig({ argv: ["--engine-ongoing-interval-ms", "1"], env: {} })).toThrow(/"engine\.ongoingIntervalMs"/);
    expect(() => loadConfig({ argv: ["--engine-branch-timeout-ms", "1"], env: {} })).toThrow(/"engine\.branchTimeoutMs"/);
    expect(loadConfig({ argv: ["--engine-retry-initial-ms", "5", "--engine-min-retry-interval-ms", "5"], env: {} }).engine.retryInitialMs).toBe(5);
  });

  it("raises stored options below the floors to the floors", () => {
    const stored = JSON.stringify({ retry: { initialInterval: "0.001s", maxInterval: "0.001s", ongoingInterval: "0.001s" }, branchTimeout: "0.001s" });
    const policy = effectivePolicy(stored, { ...defaultConfig().engine, ...FLOORS });
    expect(policy).toMatchObject({ branchTimeoutMs: 100, retry: { initialMs: 100, maxMs: 100 } });
    expect(policy.retry.ongoingMs).toBe(100);
  });

  it("spaces the retries of a transaction stored with 1ms intervals at least half the floor apart (equal jitter)", async () => {
    const url = await backend.freshUrl();
    // A row as an older coordinator, without floors, would have stored it.
    const store = await openStore({ url, poolSize: 1 });
    const gid = "stored-1ms";
    const options = JSON.stringify({ retry: { initialInterval: "0.001s", maxInterval: "0.001s" } });
    await store.write([
      {
        kind: "create",
        transaction: txRecord(gid, { options, nextAttemptAt: Date.now() }),
        branches: [branchRecord(gid, 1, "action", { target: svc.httpUrl("/always-500") }), branchRecord(gid, 1, "compensate", { target: svc.httpUrl("/undo") })],
      },
    ]);
    await store.close();
    svc.on("/always-500", () => ({ status: 500 }));
    const coordinator = await startTestCoordinator(url, { engine: FLOORS });
    try {
      await waitUntil(async () => svc.callsTo("/always-500", gid).length >= 6, "six attempts");
    } finally {
      await coordinator.stop();
    }
    const at = svc.callsTo("/always-500", gid).map((c) => c.at);
    // A gap can only grow on a slower machine, so this lower bound holds anywhere.
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(FLOORS.minRetryIntervalMs / 2 - 5);
  });
});
