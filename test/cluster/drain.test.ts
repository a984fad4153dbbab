import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createAccordClient, TransactionStatus, type AccordClient } from "../../client/index.js";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { scrape } from "../support/prometheus.js";
import { mysqlBackend } from "../support/stores.js";
import { gate, waitUntil } from "../support/wait-until.js";

// A rolling upgrade: two coordinators on one MariaDB behind etcd, the SDK under a steady bounded
// load. One is drained (AdminService.Drain) while it runs transactions, then stopped. The SDK sees
// no error, every transaction succeeds, and what the drained one ran was handed back.

let etcd: ThrowawayEtcd;
let a: RunningCoordinator;
let b: RunningCoordinator;
let accord: AccordClient;
const svc = new TestBranchService();
const backend = mysqlBackend();

beforeAll(async () => {
  etcd = await startEtcd();
  await svc.listenHttp();
  const store = await backend.freshUrl();
  const options = (id: string) => ({
    engine: { coordinatorId: id },
    cluster: { etcdEndpoints: etcd.endpoint, leaseTtlSeconds: 2 },
    security: { adminCallers: "*" },
  });
  a = await startTestCoordinator(store, options("drain-a"));
  b = await startTestCoordinator(store, options("drain-b"));
  accord = createAccordClient({ etcd: { endpoints: [etcd.endpoint] }, retries: 8, timeoutMs: 30_000 });
}, 180_000);
afterAll(async () => {
  await accord?.close();
  await a?.stop();
  await b?.stop();
  await svc.close();
  await etcd?.stop();
  await backend.cleanup();
}, 180_000);

it("drains a coordinator under load: it leaves discovery, reports DRAINING, hands back its work, and the SDK sees no error", { timeout: 240_000 }, async () => {
  // While the drain is under way, every second step waits, so the drained coordinator has
  // transactions mid-run to hand back.
  const drainStarted = gate();
  svc.on("/step-2", () => ({ status: 200, until: drainStarted.isOpen() ? undefined : drainStarted.opened }));
  const ended: TransactionStatus[] = [];
  const errors: unknown[] = [];
  let stop = false;
  let n = 0;
  const deadline = Date.now() + 180_000;
  const worker = async () => {
    while (!stop && n < 400 && Date.now() < deadline) {
      const gid = `drain-${n++}`;
      try {
        const tx = await accord.saga({ gid }).step({ action: svc.httpUrl("/step-1"), compensate: svc.httpUrl("/undo-1") }).step({ action: svc.httpUrl("/step-2"), compensate: svc.httpUrl("/undo-2") }).submit({ wait: true, timeoutMs: 60_000 });
        ended.push(tx.status);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  const workers = Array.from({ length: 6 }, worker);
  // Wait until A itself runs transactions held mid-run: those are what it must hand back.
  await waitUntil(async () => ((await scrape(`${a.url}/metrics`)).value("accord_running_transactions") ?? 0) > 0, "A to run transactions held at their second step", 60_000);

  const admin = createClient(AdminService, createGrpcTransport({ baseUrl: a.url }));
  const draining = admin.drain({}, { timeoutMs: 60_000 });
  // Health says DRAINING at once, on /healthz and grpc.health.v1, while the drain waits.
  await waitUntil(async () => (await fetch(`${a.url}/healthz`)).status === 503, "A's /healthz to answer 503", 30_000);
  expect(await (await fetch(`${a.url}/healthz`)).json()).toMatchObject({ status: "DRAINING" });
  const health = createClient(Health, createGrpcTransport({ baseUrl: a.url }));
  expect((await health.check({ service: "" })).status).toBe(Serving.NOT_SERVING);
  // Out of discovery: only B's keys are left.
  const kv = new Etcd3({ hosts: etcd.endpoint });
  try {
    await waitUntil(async () => !Object.keys(await kv.getAll().prefix("accord/v1/coordinators/").strings()).includes("accord/v1/coordinators/drain-a"), "A's key to leave etcd", 30_000);
  } finally {
    kv.close();
  }
  drainStarted.open();
  expect((await draining).running).toBe(0);

  // Keep the load going a while on B alone, then upgrade A: stop it.
  const mark = ended.length;
  await waitUntil(async () => ended.length >= mark + 30, () => `30 more transactions after the drain (${ended.length - mark} so far)`, 120_000);
  await a.stop();
  const markStopped = ended.length;
  await waitUntil(async () => ended.length >= markStopped + 20, "20 more transactions after the stop", 120_000);
  stop = true;
  await Promise.all(workers);

  expect(errors).toEqual([]);
  expect(ended.length).toBeGreaterThanOrEqual(50);
  expect(ended.every((status) => status === TransactionStatus.SUCCEEDED)).toBe(true);
  // Every transaction ran each action exactly once in effect, whoever finished it.
  for (let i = 0; i < n; i++) {
    if (svc.effectsOf(`drain-${i}`).length > 0) expect(svc.effectsOf(`drain-${i}`).sort()).toEqual([`drain-${i}/01/action`, `drain-${i}/02/action`]);
  }
});
