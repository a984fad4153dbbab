import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createAccordClient, gidPoint, TransactionStatus, type AccordClient } from "../../client/index.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { freePort } from "../support/free-port.js";
import { scrape } from "../support/prometheus.js";
import { mysqlBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// A stable and a canary coordinator on one MariaDB, found in etcd. The SDK sends a share of new
// transactions (by gid hash) to the canary and the rest to the stable one; when the canary is
// gone, everything goes to the stable one without an error. Which coordinator ran a transaction
// is read from each one's own metrics (a SAGA runs where it was submitted).

let etcd: ThrowawayEtcd;
let stable: RunningCoordinator;
let canary: RunningCoordinator | undefined;
let accord: AccordClient;
const svc = new TestBranchService();
const backend = mysqlBackend();

beforeAll(async () => {
  etcd = await startEtcd();
  await svc.listenHttp();
  const store = await backend.freshUrl();
  const cluster = { etcdEndpoints: etcd.endpoint, leaseTtlSeconds: 2 };
  stable = await startTestCoordinator(store, { engine: { coordinatorId: "stable" }, cluster: { ...cluster, labels: { track: "stable" } } });
  canary = await startTestCoordinator(store, { engine: { coordinatorId: "canary" }, cluster: { ...cluster, labels: { track: "canary", version: "0.3.0" } } });
  // Registration is asynchronous: the SDK's first listing must already see both.
  const kv = new Etcd3({ hosts: etcd.endpoint });
  try {
    await waitUntil(async () => Object.keys(await kv.getAll().prefix("accord/v1/coordinators/").strings()).length === 2, "both coordinators in etcd", 60_000);
  } finally {
    kv.close();
  }
  accord = createAccordClient({ etcd: { endpoints: [etcd.endpoint] }, routing: [{ labels: { track: "canary" }, share: 0.3 }] });
}, 180_000);
afterAll(async () => {
  await accord?.close();
  await canary?.stop();
  await stable?.stop();
  await svc.close();
  await etcd?.stop();
  await backend.cleanup();
}, 180_000);

const started = async (coordinator: RunningCoordinator) => (await scrape(`${coordinator.url}/metrics`)).value("accord_transactions_started_total", { mode: "saga" }) ?? 0;
const transfer = (gid: string) =>
  accord.saga({ gid }).step({ action: svc.httpUrl("/debit"), compensate: svc.httpUrl("/debit-undo") }).submit({ wait: true });

it("splits new transactions by gid hash, sticks to the split, and changes it at run time", { timeout: 180_000 }, async () => {
  await waitUntil(async () => (await accord.list({ pageSize: 1 })) !== undefined, "the SDK to discover the coordinators", 60_000);
  const gids = Array.from({ length: 40 }, (_, i) => `canary-split-${i}`);
  const before = { stable: await started(stable), canary: await started(canary!) };
  for (const gid of gids) expect((await transfer(gid)).status).toBe(TransactionStatus.SUCCEEDED);
  const toCanary = gids.filter((gid) => gidPoint(gid) < 0.3).length;
  expect(toCanary).toBeGreaterThan(0);
  expect((await started(canary!)) - before.canary).toBe(toCanary);
  expect((await started(stable)) - before.stable).toBe(gids.length - toCanary);

  // A tenant's namespace to the canary instead, from now on.
  accord.setRouting([{ labels: { track: "canary" }, gidPrefix: "tenant-a-" }]);
  const mark = { stable: await started(stable), canary: await started(canary!) };
  for (const gid of ["tenant-a-1", "tenant-a-2", "tenant-b-1"]) expect((await transfer(gid)).status).toBe(TransactionStatus.SUCCEEDED);
  expect((await started(canary!)) - mark.canary).toBe(2);
  expect((await started(stable)) - mark.stable).toBe(1);
});

it("fails over from a canary that died but is still listed in etcd, without an error", { timeout: 180_000 }, async () => {
  // What etcd shows for a killed coordinator until its lease runs out: its key, for a dead address.
  const kv = new Etcd3({ hosts: etcd.endpoint });
  const key = "accord/v1/coordinators/ghost";
  await kv.put(key).value(JSON.stringify({ address: `http://127.0.0.1:${await freePort()}`, version: "0.3.0", zone: "", labels: { track: "ghost" } }));
  // A new client: its first listing has the ghost in it.
  const client = createAccordClient({ etcd: { endpoints: [etcd.endpoint] }, routing: [{ labels: { track: "ghost" }, share: 1 }] });
  try {
    for (let i = 0; i < 5; i++) {
      const tx = await client.saga({ gid: `canary-ghost-${i}` }).step({ action: svc.httpUrl("/debit"), compensate: svc.httpUrl("/debit-undo") }).submit({ wait: true });
      expect(tx.status).toBe(TransactionStatus.SUCCEEDED);
    }
  } finally {
    await client.close();
    await kv.delete().key(key);
    kv.close();
  }
});

it("falls back to the stable coordinators when no canary is up, without an error", { timeout: 180_000 }, async () => {
  accord.setRouting([{ labels: { track: "canary" }, share: 1 }]);
  await canary!.stop(); // leaves etcd first
  canary = undefined;
  const before = await started(stable);
  const gids = Array.from({ length: 10 }, (_, i) => `canary-fallback-${i}`);
  for (const gid of gids) expect((await transfer(gid)).status).toBe(TransactionStatus.SUCCEEDED);
  expect((await started(stable)) - before).toBe(gids.length);
});
