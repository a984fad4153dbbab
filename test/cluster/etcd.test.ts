import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccordClient, TransactionStatus } from "../../client/index.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startCoordinatorProcess } from "../support/coordinator-process.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { startMariadb, type ThrowawayMariadb } from "../support/mariadb.js";
import { gate, waitUntil } from "../support/wait-until.js";

const PREFIX = "accord/v1/coordinators/";

describe("etcd registration and discovery", () => {
  let etcd: ThrowawayEtcd;
  let mariadb: ThrowawayMariadb;
  let kv: Etcd3;
  const svc = new TestBranchService();

  beforeAll(async () => {
    [etcd, mariadb] = await Promise.all([startEtcd(), startMariadb()]);
    kv = new Etcd3({ hosts: etcd.endpoint });
    await svc.listenHttp();
  }, 180_000); // starts etcd and MariaDB: generous for a busy machine
  afterAll(async () => {
    kv.close();
    await svc.close();
    await etcd.stop();
    await mariadb.stop();
  });

  const registered = async () => (await kv.getAll().prefix(PREFIX).strings()) as Record<string, string>;
  const healthz = async (c: RunningCoordinator) => (await (await fetch(`${c.url}/healthz`)).json()) as { etcd: string };

  it("registers under a lease with address, version and zone, and leaves on graceful stop", async () => {
    const coordinator = await startTestCoordinator(mariadb.url("reg"), {
      engine: { coordinatorId: "c-reg" },
      cluster: { etcdEndpoints: etcd.endpoint, zone: "zone-a", leaseTtlSeconds: 5, labels: { track: "stable" } },
    });
    try {
      const entry = await waitUntil(async () => (await registered())[`${PREFIX}c-reg`], "the key");
      expect(JSON.parse(entry)).toEqual({ address: coordinator.url, version: "0.1.0", zone: "zone-a", labels: { track: "stable" } });
      const [record] = (await kv.get(`${PREFIX}c-reg`).exec()).kvs;
      expect(record?.lease.toString()).not.toBe("0");
      expect((await healthz(coordinator)).etcd).toBe("registered");
    } finally {
      // Stopped whatever happened above: a key left behind would spoil the later tests' counts.
      await coordinator.stop();
    }
    expect((await registered())[`${PREFIX}c-reg`]).toBeUndefined();
  });

  it("keeps serving while etcd is down and registers once it is back", { timeout: 120_000 }, async () => {
    await etcd.pause();
    const coordinator = await startTestCoordinator(mariadb.url("down"), {
      engine: { coordinatorId: "c-down" },
      cluster: { etcdEndpoints: etcd.endpoint, leaseTtlSeconds: 5 },
    });
    try {
      const tx = await createAccordClient({ address: coordinator.url })
        .saga()
        .step({ action: svc.httpUrl("/a"), compensate: svc.httpUrl("/u") })
        .submit({ wait: true });
      expect(tx.status).toBe(TransactionStatus.SUCCEEDED);
      await waitUntil(async () => (await healthz(coordinator)).etcd === "unavailable", "health to show etcd unavailable");
      await etcd.resume();
      await waitUntil(async () => (await registered())[`${PREFIX}c-down`], "registration after etcd is back", 60_000);
      expect((await healthz(coordinator)).etcd).toBe("registered");
    } finally {
      await coordinator.stop();
    }
  });

  it("lets a killed coordinator's key expire with its lease", { timeout: 120_000 }, async () => {
    const proc = await startCoordinatorProcess(mariadb.url("killed"), [
      "--engine-coordinator-id", "c-killed",
      "--cluster-etcd-endpoints", etcd.endpoint,
      "--cluster-lease-ttl-seconds", "2",
    ]);
    await waitUntil(async () => (await registered())[`${PREFIX}c-killed`], "the key", 30_000);
    proc.child.kill("SIGKILL");
    await proc.exited;
    await waitUntil(async () => (await registered())[`${PREFIX}c-killed`] === undefined, "the key to expire (lease TTL 2 s)", 30_000);
  });

  it("SDK: discovers coordinators, balances across them, and survives one dying mid-load", { timeout: 240_000 }, async () => {
    const store = mariadb.url("shared");
    const args = (id: string) => ["--engine-coordinator-id", id, "--cluster-etcd-endpoints", etcd.endpoint, "--cluster-lease-ttl-seconds", "2"];
    const one = await startCoordinatorProcess(store, args("c-one"));
    const two = await startCoordinatorProcess(store, args("c-two"));
    const accord = createAccordClient({ etcd: { endpoints: [etcd.endpoint] }, retries: 4, timeoutMs: 5000 });
    try {
      await waitUntil(async () => Object.keys(await registered()).filter((k) => k.includes("c-one") || k.includes("c-two")).length === 2, "both registered", 30_000);
      const submit = () => accord.saga().step({ action: svc.httpUrl("/d"), compensate: svc.httpUrl("/du") }).submit({ wait: true });
      const before = await Promise.all(Array.from({ length: 10 }, submit));
      expect(before.every((t) => t.status === TransactionStatus.SUCCEEDED)).toBe(true);

      // Kill one while calls are in flight: the client retries on the other with the same request_id.
      // The branch holds the first call of each of these sagas until the kill, so they are all
      // mid-flight (on both coordinators) when it happens, however slow the machine.
      const killed = gate();
      svc.on("/d", (_call, n) => (n === 0 ? { status: 200, until: killed.opened } : { status: 200 }));
      const callsBefore = svc.callsTo("/d").length;
      const during = Array.from({ length: 20 }, submit);
      await waitUntil(async () => svc.callsTo("/d").length >= callsBefore + 20, "every saga to be mid-flight", 60_000);
      one.child.kill("SIGKILL");
      await one.exited;
      killed.open();
      const results = await Promise.allSettled(during);
      const failures = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
      expect(failures).toEqual([]);
      const ok = results.map((r) => (r as PromiseFulfilledResult<{ gid: string }>).value.gid);
      // Every accepted saga ends, whoever took it over.
      for (const gid of ok) {
        await waitUntil(async () => (await accord.get(gid)).status === TransactionStatus.SUCCEEDED, `${gid} to succeed`, 30_000);
      }
      // A coordinator that appears later is used too: with the first two gone, it serves alone.
      const three = await startCoordinatorProcess(store, args("c-three"));
      two.child.kill("SIGTERM");
      await two.exited;
      await waitUntil(async () => {
        const keys = Object.keys(await registered());
        return keys.length === 1 && keys[0]!.endsWith("c-three");
      }, "only c-three registered", 30_000);
      const after = await submit();
      expect(after.status).toBe(TransactionStatus.SUCCEEDED);
      three.child.kill("SIGTERM");
      await three.exited;
    } finally {
      await accord.close();
      for (const p of [one, two]) {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGTERM");
        await p.exited;
      }
    }
  });
});

describe("etcd over TLS with client certificates", () => {
  it("registers a coordinator and lets the SDK discover it, both through TLS", { timeout: 120_000 }, async () => {
    const { TestPki } = await import("../support/certificates.js");
    const pki = await TestPki.create();
    const ca = await pki.ca("etcd-ca");
    const server = await pki.leaf(ca, { cn: "etcd", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    const client = await pki.leaf(ca, { cn: "accord" });
    const tlsEtcd = await startEtcd({ certFile: server.certFile, keyFile: server.keyFile, caFile: ca.certFile, client: { cert: client.cert, key: client.key, ca: ca.cert } });
    const coordinator = await startTestCoordinator(`file:${pki.dir}/accord.db`, {
      engine: { coordinatorId: "c-tls" },
      cluster: { etcdEndpoints: tlsEtcd.endpoint, etcdCaFile: ca.certFile, etcdCertFile: client.certFile, etcdKeyFile: client.keyFile },
    });
    const accord = createAccordClient({ etcd: { endpoints: [tlsEtcd.endpoint], tls: { ca: ca.cert, cert: client.cert, key: client.key } } });
    try {
      await waitUntil(async () => (await (await fetch(`${coordinator.url}/healthz`)).json() as { etcd: string }).etcd === "registered", "registration over TLS", 30_000);
      expect((await accord.newGid())).toMatch(/^[0-9A-Z]{26}$/);
    } finally {
      await accord.close();
      await coordinator.stop();
      await tlsEtcd.stop();
      await pki.cleanup();
    }
  });
});
