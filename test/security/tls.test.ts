import { X509Certificate } from "node:crypto";
import { copyFile } from "node:fs/promises";
import { createServer as createHttpsServer, type Server } from "node:https";
import { join } from "node:path";
import { Writable } from "node:stream";
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from "node:tls";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccordClient, TransactionStatus } from "../../client/index.js";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { CoordinatorService, GetTransactionRequestSchema, GetTransactionResponseSchema } from "../../gen/accord/v1/coordinator_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestPki, type CertFiles } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { grpcUnary } from "../support/grpc-client.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

let pki: TestPki;
let ca: CertFiles;
let server: CertFiles;
let app: CertFiles;
let other: CertFiles;
let ops: CertFiles;
let expired: CertFiles;
let rogue: CertFiles;
let coordinator: RunningCoordinator;
const logs: string[] = [];
const backend = sqliteBackend();
let serverCertFile: string;
let serverKeyFile: string;

beforeAll(async () => {
  pki = await TestPki.create();
  ca = await pki.ca("accord-test-ca");
  const rogueCa = await pki.ca("rogue-ca");
  server = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
  app = await pki.leaf(ca, { cn: "app", san: ["URI:spiffe://test/app", "DNS:app.test"] });
  other = await pki.leaf(ca, { cn: "other", san: ["URI:spiffe://test/other"] });
  ops = await pki.leaf(ca, { cn: "ops", san: ["DNS:ops.test"] });
  expired = await pki.leaf(ca, { cn: "expired", san: ["URI:spiffe://test/app"], days: 0 });
  rogue = await pki.leaf(rogueCa, { cn: "rogue", san: ["URI:spiffe://test/app"] });
  // Stable paths, so the rotation test can replace their contents.
  serverCertFile = join(pki.dir, "server.crt");
  serverKeyFile = join(pki.dir, "server.key");
  await copyFile(server.certFile, serverCertFile);
  await copyFile(server.keyFile, serverKeyFile);
  const logger = pino({ level: "info" }, new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) }));
  coordinator = await startTestCoordinator(
    await backend.freshUrl(),
    {
      security: {
        tlsCertFile: serverCertFile,
        tlsKeyFile: serverKeyFile,
        tlsCaFile: ca.certFile,
        mtls: "required",
        coordinatorCallers: "spiffe://test/app,ops.test",
        adminCallers: "ops.test",
        tenantPrefixes: "spiffe://test/app=tenant-a-",
      },
    },
    logger,
  );
  // Let the 0-day certificate expire: its notAfter has whole seconds, and it is valid through it.
  const notAfter = new Date(new X509Certificate(expired.cert).validTo).getTime();
  await waitUntil(async () => Date.now() >= notAfter + 1000, "the 0-day certificate to expire");
});
afterAll(async () => {
  await coordinator.stop();
  await backend.cleanup();
  await pki.cleanup();
});

const address = () => `127.0.0.1:${coordinator.port}`;
const grpcWith = (client: CertFiles | undefined, trust: CertFiles = ca) =>
  new grpc.Client(address(), grpc.credentials.createSsl(trust.cert, client?.key ?? null, client?.cert ?? null));
const getTx = (client: grpc.Client, gid: string) =>
  grpcUnary(client, "/accord.v1.CoordinatorService/GetTransaction", GetTransactionRequestSchema, GetTransactionResponseSchema, { gid }, { deadlineMs: 3000 });
const peer = (options: { maxVersion?: "TLSv1.1" | "TLSv1.3" } = {}) =>
  new Promise<{ protocol: string | null; cert: PeerCertificate }>((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({ host: "127.0.0.1", port: coordinator.port, ca: ca.cert, cert: app.cert, key: app.key, servername: "localhost", ...options }, () => {
      resolve({ protocol: socket.getProtocol(), cert: socket.getPeerCertificate() });
      socket.end();
    });
    socket.on("error", reject);
  });

describe("TLS and mTLS on the one port", () => {
  it("negotiates TLS 1.3 and refuses anything below TLS 1.2", async () => {
    expect((await peer()).protocol).toBe("TLSv1.3");
    await expect(peer({ maxVersion: "TLSv1.1" })).rejects.toThrow();
  });

  it.each([
    ["no client certificate", () => grpcWith(undefined)],
    ["a certificate from another CA", () => grpcWith(rogue)],
    ["an expired certificate", () => grpcWith(expired)],
  ])("does not let a caller with %s complete a call", async (_name, make) => {
    const client = make();
    await expect(getTx(client, "tenant-a-1")).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    client.close();
  });

  it("serves a caller with a valid certificate, within its gid namespace", async () => {
    const client = grpcWith(app);
    await expect(getTx(client, "tenant-a-1")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const denied = await getTx(client, "tenant-b-1").catch((e: grpc.ServiceError) => e);
    client.close();
    expect(denied).toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // The identity goes to the log, not to the caller.
    expect((denied as grpc.ServiceError).details).not.toContain("spiffe");
    expect(logs.some((l) => l.includes("permission denied") && l.includes("spiffe://test/app"))).toBe(true);
  });

  it("refuses identities the policy does not list, and AdminService to all but its callers", async () => {
    const client = grpcWith(other);
    await expect(getTx(client, "x")).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    client.close();
    const admin = (creds: CertFiles) =>
      createClient(AdminService, createGrpcTransport({ baseUrl: `https://${address()}`, nodeOptions: { ca: ca.cert, cert: creds.cert, key: creds.key } }));
    await expect(admin(app).getConfig({})).rejects.toSatisfy((e) => e instanceof ConnectError && e.code === Code.PermissionDenied);
    expect(JSON.parse((await admin(ops).getConfig({})).configJson)).toMatchObject({ security: { mtls: "required" } });
  });

  it("serves gRPC-Web and Connect (HTTP/1.1 and HTTP/2) on the same TLS port", async () => {
    const nodeOptions = { ca: ca.cert, cert: app.cert, key: app.key };
    const baseUrl = `https://${address()}`;
    const transports = [
      createGrpcWebTransport({ baseUrl, httpVersion: "1.1", nodeOptions }),
      createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions }),
      createConnectTransport({ baseUrl, httpVersion: "2", nodeOptions }),
    ];
    for (const transport of transports) {
      await expect(createClient(CoordinatorService, transport).getTransaction({ gid: "tenant-a-none" })).rejects.toSatisfy(
        (e) => e instanceof ConnectError && e.code === Code.NotFound,
      );
    }
  });

  it("lets the SDK call over mTLS, and a tenant list only its own namespace", async () => {
    const accord = createAccordClient({ address: `https://${address()}`, tls: { ca: ca.cert, cert: app.cert, key: app.key } });
    const tx = await accord.saga({ gid: `tenant-a-${Date.now()}` }).step({ action: "http://127.0.0.1:9/none", compensate: "http://127.0.0.1:9/none" }).submit();
    expect(tx.status).toBe(TransactionStatus.SUBMITTED);
    await expect(accord.list({})).rejects.toSatisfy((e) => e instanceof ConnectError && e.code === Code.PermissionDenied);
    expect((await accord.list({ gidPrefix: "tenant-a-" })).transactions.map((t) => t.gid)).toContain(tx.gid);
  });

  it("picks up rotated certificate files without a restart, and on SIGHUP", async () => {
    const before = (await peer()).cert.serialNumber;
    const next = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    await copyFile(next.keyFile, serverKeyFile);
    await copyFile(next.certFile, serverCertFile);
    const serialOf = (c: CertFiles) => new X509Certificate(c.cert).serialNumber;
    expect(before).toBe(serialOf(server));
    await waitUntil(async () => (await peer()).cert.serialNumber === serialOf(next), "the new certificate to be served", 30_000);

    const third = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    await copyFile(third.keyFile, serverKeyFile);
    await copyFile(third.certFile, serverCertFile);
    coordinator.reloadTls(); // what SIGHUP does
    expect((await peer()).cert.serialNumber).toBe(serialOf(third));
  });
});

describe("outbound TLS to branches", () => {
  let branch: Server;
  let branchPort = 0;
  const seen: string[] = [];

  beforeAll(async () => {
    const branchCert = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    branch = createHttpsServer({ cert: branchCert.cert, key: branchCert.key, ca: ca.cert, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      seen.push(String((req.socket as TLSSocket).getPeerCertificate().subject?.CN));
      req.resume();
      req.on("end", () => res.writeHead(200).end());
    });
    await new Promise<void>((r) => branch.listen(0, "127.0.0.1", r));
    branchPort = (branch.address() as { port: number }).port;
  });
  afterAll(() => new Promise((r) => branch.close(r)));

  it("verifies the branch against the configured CA and presents the coordinator's certificate", async () => {
    const coordinatorCert = await pki.leaf(ca, { cn: "accord-coordinator" });
    const plain = sqliteBackend();
    const withCert = await startTestCoordinator(await plain.freshUrl(), {
      security: { branchCaFile: ca.certFile, branchCertFile: coordinatorCert.certFile, branchKeyFile: coordinatorCert.keyFile },
    });
    const withoutCert = await startTestCoordinator(await plain.freshUrl(), { security: { branchCaFile: ca.certFile } });
    try {
      const url = `https://localhost:${branchPort}/pay`;
      const ok = await createAccordClient({ address: withCert.url }).saga().step({ action: url, compensate: url }).submit({ wait: true });
      expect(ok.status).toBe(TransactionStatus.SUCCEEDED);
      expect(seen).toContain("accord-coordinator");

      const refused = await createAccordClient({ address: withoutCert.url }).saga().step({ action: url, compensate: url }).submit();
      const stuck = await waitUntil(async () => {
        const tx = await createAccordClient({ address: withoutCert.url }).get(refused.gid);
        return tx.lastError ? tx : undefined;
      }, "a failed TLS attempt");
      expect(stuck.status).toBe(TransactionStatus.SUBMITTED);
    } finally {
      await withCert.stop();
      await withoutCert.stop();
      await plain.cleanup();
    }
  });
});
