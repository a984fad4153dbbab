import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { namingEntry } from "../../server/cluster/etcd-registration.js";
import { resolveConfig } from "../../server/config.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startCoordinatorProcess } from "../support/coordinator-process.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// The standard key is read by code Accord does not own (grpc-go's etcd resolver, any language's
// etcd client), so these tests pin its exact key and JSON, not just "something is there".
const backend = sqliteBackend();
let etcd: ThrowawayEtcd;
let kv: Etcd3;

beforeAll(async () => {
  etcd = await startEtcd();
  kv = new Etcd3({ hosts: etcd.endpoint });
}, 60_000);
afterAll(async () => {
  kv?.close();
  await etcd?.stop();
  await backend.cleanup();
});

const under = async (prefix: string) => (await kv.getAll().prefix(prefix).strings()) as Record<string, string>;

describe("standard etcd naming registration", () => {
  it("puts NAME/<host:port> = etcd's endpoints JSON under the lease of Accord's own key, and deletes both on graceful stop", async () => {
    const coordinator = await startTestCoordinator(await backend.freshUrl(), {
      engine: { coordinatorId: "c-naming" },
      cluster: { etcdEndpoints: etcd.endpoint, zone: "zone-a", leaseTtlSeconds: 5, labels: { track: "canary", version: "0.3.0" } },
    });
    const addr = `127.0.0.1:${coordinator.port}`;
    const key = `accord/v1/grpc/${addr}`;
    try {
      const value = await waitUntil(async () => (await under("accord/v1/grpc/"))[key], `${key} in etcd`);
      expect(JSON.parse(value)).toEqual({
        Op: 0,
        Addr: addr,
        Metadata: { id: "c-naming", version: "0.1.0", zone: "zone-a", labels: { track: "canary", version: "0.3.0" }, tls: false },
      });
      // Byte for byte what etcd's endpoints.Manager writes (Go's json.Marshal of internal.Update).
      expect(value.startsWith(`{"Op":0,"Addr":"${addr}","Metadata":{`)).toBe(true);
      const [standard] = (await kv.get(key).exec()).kvs;
      const [own] = (await kv.get("accord/v1/coordinators/c-naming").exec()).kvs;
      expect(standard?.lease.toString()).not.toBe("0");
      expect(standard?.lease.toString()).toBe(own?.lease.toString());
      // Accord's own key carries the labels too: the SDK routes canary traffic by them.
      expect(JSON.parse(String(own?.value))).toMatchObject({ address: coordinator.url, labels: { track: "canary", version: "0.3.0" } });
    } finally {
      await coordinator.stop();
    }
    expect(await under("accord/v1/grpc/")).toEqual({});
    expect(await under("accord/v1/coordinators/c-naming")).toEqual({});
  });

  it("writes under cluster.namingPrefix, and nothing when it is empty", async () => {
    const named = await startTestCoordinator(await backend.freshUrl(), {
      engine: { coordinatorId: "c-named" },
      cluster: { etcdEndpoints: etcd.endpoint, namingPrefix: "shop/accord", leaseTtlSeconds: 5 },
    });
    const off = await startTestCoordinator(await backend.freshUrl(), {
      engine: { coordinatorId: "c-off" },
      cluster: { etcdEndpoints: etcd.endpoint, namingPrefix: "", leaseTtlSeconds: 5 },
    });
    try {
      await waitUntil(async () => (await under("shop/accord/"))[`shop/accord/127.0.0.1:${named.port}`], "the key under shop/accord/");
      // "registered" is reported once every put of the registration succeeded.
      await waitUntil(async () => ((await (await fetch(`${off.url}/healthz`)).json()) as { etcd: string }).etcd === "registered", "c-off registered");
      expect(Object.keys(await under("accord/v1/coordinators/"))).toContain("accord/v1/coordinators/c-off");
      const everything = (await kv.getAll().strings()) as Record<string, string>;
      expect(Object.keys(everything).filter((k) => k.endsWith(`:${off.port}`))).toEqual([]);
    } finally {
      await Promise.all([named.stop(), off.stop()]);
    }
  });

  it("lets a killed coordinator's standard key expire with its lease", { timeout: 120_000 }, async () => {
    const proc = await startCoordinatorProcess(await backend.freshUrl(), [
      "--engine-coordinator-id", "c-killed",
      "--cluster-etcd-endpoints", etcd.endpoint,
      "--cluster-lease-ttl-seconds", "2",
      "--cluster-naming-prefix", "killed/accord",
    ]);
    const key = `killed/accord/${new URL(proc.url).host}`;
    try {
      await waitUntil(async () => (await under("killed/accord/"))[key], key, 30_000);
    } finally {
      proc.child.kill("SIGKILL");
      await proc.exited;
    }
    await waitUntil(async () => (await under("killed/accord/"))[key] === undefined, "the key to expire (lease TTL 2 s)", 30_000);
  });

  it("spells out the port and keeps IPv6 brackets in Addr, and says whether the port speaks TLS", () => {
    const info = { id: "c", version: "1.2.3", zone: "", labels: {} };
    expect(namingEntry("svc", { ...info, address: "https://[::1]" })).toEqual({
      key: "svc/[::1]:443",
      record: { Op: 0, Addr: "[::1]:443", Metadata: { ...info, labels: {}, tls: true } },
    });
    expect(namingEntry("svc", { ...info, address: "http://accord.internal:7460" }).key).toBe("svc/accord.internal:7460");
    expect(namingEntry("svc", { ...info, address: "http://accord.internal" }).record.Addr).toBe("accord.internal:80");
  });
});

describe("cluster.namingPrefix in the configuration", () => {
  it("refuses a / at either end, which no resolver would ask for", () => {
    for (const bad of ["accord/", "/accord"]) {
      expect(() => resolveConfig({ store: "file:x.db", cluster: { namingPrefix: bad } })).toThrow(/cluster\.namingPrefix.*no \/ at either end/);
    }
    expect(resolveConfig({ store: "file:x.db" }).cluster.namingPrefix).toBe("accord/v1/grpc");
  });
});
