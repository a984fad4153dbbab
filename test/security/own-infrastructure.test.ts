import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Etcd3 } from "etcd3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { createBranchInvoker } from "../../server/engine/branch-invoker.js";
import { createTargetPolicy } from "../../server/security/target-policy.js";
import { loadConfig } from "../../server/config.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { startMariadb, type ThrowawayMariadb } from "../support/mariadb.js";

// A SAGA step posting to http://127.0.0.1:<etcd port>/v3/kv/put once wrote a rogue coordinator
// key into etcd. The coordinator now refuses targets that are its own listener, its etcd
// endpoints or its database, however they are spelled, unless an allowlist entry names them.

let mariadb: ThrowawayMariadb;
let etcd: ThrowawayEtcd;
let coordinator: RunningCoordinator;
let client: Client<typeof CoordinatorService>;
const svc = new TestBranchService();

const portOf = (url: string) => Number(new URL(url).port);

beforeAll(async () => {
  [mariadb, etcd] = await Promise.all([startMariadb(), startEtcd()]);
  await svc.listenHttp();
  coordinator = await startTestCoordinator(mariadb.url("own_infra"), {
    cluster: { etcdEndpoints: etcd.endpoint },
    // Every loopback spelling the test tries passes the allowlist, so only the protection stops it.
    security: { allowedTargetHosts: "127.0.0.1,localhost,::1,0.0.0.0,127.0.0.2,::ffff:7f00:1" },
  });
  client = createClient(CoordinatorService, createConnectTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }));
});
afterAll(async () => {
  await coordinator?.stop();
  await svc.close();
  await etcd?.stop();
  await mariadb?.stop();
});

const refusalOf = async (action: string) => {
  const ok = svc.httpUrl("/ok");
  const error = await client.submit({ gid: `own-${Math.random().toString(36).slice(2)}`, mode: Mode.SAGA, steps: [{ action, compensate: ok }] }).then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  return error && { code: error.code, message: error.rawMessage };
};

describe("branch targets that point at the coordinator's own infrastructure", () => {
  it("refuses its etcd endpoint, however the loopback address is spelled", async () => {
    const port = portOf(etcd.endpoint);
    for (const host of ["127.0.0.1", "localhost", "[::1]", "0.0.0.0", "127.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "127.0.0.2"]) {
      const refusal = await refusalOf(`http://${host}:${port}/v3/kv/put`);
      expect(refusal, host).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^steps\[0\]\.action: .*is an etcd endpoint/) });
    }
    const etcdClient = new Etcd3({ hosts: etcd.endpoint });
    try {
      const keys = await etcdClient.getAll().prefix("accord/v1/coordinators/").keys();
      expect(keys.every((k) => !k.includes("rogue"))).toBe(true);
    } finally {
      etcdClient.close();
    }
  });

  it("refuses its own port and its database, over any scheme", async () => {
    expect(await refusalOf(`http://localhost:${coordinator.port}/accord.v1.CoordinatorService/Submit`)).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringContaining("this coordinator's own port"),
    });
    expect(await refusalOf(`grpc://127.0.0.1:${coordinator.port}/accord.v1.CoordinatorService/Submit`)).toMatchObject({ code: Code.InvalidArgument });
    expect(await refusalOf(`http://127.0.0.1:${portOf(mariadb.url("x"))}/`)).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringContaining("this coordinator's database"),
    });
  });

  it("still calls other services on loopback", async () => {
    const tx = await client.submit({ gid: `own-ok-${Date.now()}`, mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/ok"), compensate: svc.httpUrl("/undo") }], wait: true });
    expect(tx.transaction?.status).toBe(4); // SUCCEEDED
  });
});

describe("allowlist entries with ports", () => {
  it("allows only the named ports and ranges", () => {
    const policy = createTargetPolicy("127.0.0.1:8080,localhost:9000-9010,[::1]:7000,*.example.com:443", "http,https");
    const allowed = (url: string) => policy.refusal(new URL(url)) === undefined;
    expect(allowed("http://127.0.0.1:8080/x")).toBe(true);
    expect(allowed("http://127.0.0.1:8081/x")).toBe(false);
    expect(allowed("http://127.0.0.1/x")).toBe(false); // port 80
    expect(allowed("http://localhost:9000/x")).toBe(true);
    expect(allowed("http://localhost:9010/x")).toBe(true);
    expect(allowed("http://localhost:9011/x")).toBe(false);
    expect(allowed("http://[::1]:7000/x")).toBe(true);
    expect(allowed("https://api.example.com/x")).toBe(true); // 443 by default
    expect(allowed("http://api.example.com:8443/x")).toBe(false);
  });

  it("opens the coordinator's own infrastructure only to an entry naming its exact host and port", () => {
    const protectedEtcd = { host: "127.0.0.1", port: 2379, what: "an etcd endpoint of this coordinator" };
    const wide = createTargetPolicy("127.0.0.1,localhost", "http");
    wide.protect(protectedEtcd);
    expect(wide.refusal(new URL("http://localhost:2379/v3/kv/put"))).toMatch(/etcd endpoint/);
    const named = createTargetPolicy("127.0.0.1:2379", "http");
    named.protect(protectedEtcd);
    expect(named.refusal(new URL("http://127.0.0.1:2379/v3/kv/put"))).toBeUndefined();
    // A range that happens to cover the port does not name it.
    const range = createTargetPolicy("127.0.0.1:2000-9000", "http");
    range.protect(protectedEtcd);
    expect(range.refusal(new URL("http://127.0.0.1:2379/v3/kv/put"))).toMatch(/etcd endpoint/);
    expect(range.refusal(new URL("http://127.0.0.1:8080/x"))).toBeUndefined();
    // A remote etcd is reached through its IPv4-mapped IPv6 spelling too.
    const remote = createTargetPolicy("*", "http");
    remote.protect({ host: "10.0.0.6", port: 2379, what: "an etcd endpoint of this coordinator" });
    for (const spelling of ["http://10.0.0.6:2379/", "http://[::ffff:10.0.0.6]:2379/", "http://[::ffff:a00:6]:2379/"]) {
      expect(remote.refusal(new URL(spelling)), spelling).toMatch(/etcd endpoint/);
    }
  });

  it("refuses malformed entries at start-up, naming the key", () => {
    for (const bad of ["host:0", "host:70000", "host:9-1", "[::1", "host:abc"]) {
      expect(() => loadConfig({ argv: ["--security-allowed-target-hosts", bad], env: {} }), bad).toThrow(/security\.allowedTargetHosts/);
    }
  });

  it("checks again at call time, so stored work cannot reach a protected address", async () => {
    const policy = createTargetPolicy("127.0.0.1", "http");
    policy.protect({ host: "127.0.0.1", port: svc.httpPort, what: "a protected test address" });
    const invoker = createBranchInvoker({ maxCallsPerHost: 4, targets: policy });
    const before = svc.calls.length;
    try {
      const outcome = await invoker.invoke({ gid: "g", mode: "saga", branchId: "01", op: "action", target: svc.httpUrl("/ok"), payload: new Uint8Array(), traceparent: "", timeoutMs: 5000, fence: 1 });
      expect(outcome).toMatchObject({ kind: "error", detail: expect.stringContaining("a protected test address") });
      expect(svc.calls.length).toBe(before);
    } finally {
      invoker.close();
    }
  });
});
