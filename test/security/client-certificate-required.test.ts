import { createSecureServer, type Http2SecureServer } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccordClient } from "../../client/index.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestPki, type CertFiles } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";

const backend = sqliteBackend();
let pki: TestPki;
let ca: CertFiles;
let serverCert: CertFiles;
let app: CertFiles;
let rogue: CertFiles;
let coordinator: RunningCoordinator;

beforeAll(async () => {
  pki = await TestPki.create();
  ca = await pki.ca("cert-required-ca");
  serverCert = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
  app = await pki.leaf(ca, { cn: "app", san: ["URI:spiffe://test/app"] });
  rogue = await pki.leaf(await pki.ca("rogue-ca"), { cn: "rogue", san: ["URI:spiffe://test/app"] });
  coordinator = await startTestCoordinator(await backend.freshUrl(), {
    security: { tlsCertFile: serverCert.certFile, tlsKeyFile: serverCert.keyFile, tlsCaFile: ca.certFile, mtls: "required" },
  });
});
afterAll(async () => {
  await coordinator?.stop();
  await backend.cleanup();
  await pki.cleanup();
});

/** The Node error codes along the cause chain: the TLS alert must stay reachable. */
function causeCodes(error: unknown): string[] {
  const codes: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

const certificateRequired = (error: unknown) =>
  error instanceof ConnectError && error.code === Code.Unauthenticated && error.message.includes("a client certificate is required");

describe("SDK against a coordinator that requires client certificates", () => {
  it.each(["grpc", "connect"] as const)("reports UNAUTHENTICATED 'a client certificate is required' without one (%s)", async (protocol) => {
    const accord = createAccordClient({ address: coordinator.url, protocol, tls: { ca: ca.cert } });
    const error = await accord.newGid().catch((e: unknown) => e);
    expect(certificateRequired(error)).toBe(true);
    expect((error as ConnectError).message).toContain(coordinator.url);
    expect(causeCodes(error)).toContain("ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED");
  });

  it("reports it for a WatchTransaction stream too", async () => {
    const accord = createAccordClient({ address: coordinator.url, tls: { ca: ca.cert } });
    const watch = async () => {
      for await (const _ of accord.watch("any-gid")) return;
    };
    await expect(watch()).rejects.toSatisfy(certificateRequired);
  });

  it("serves a client with a certificate, and does not call other refusals 'certificate required'", async () => {
    const withCert = createAccordClient({ address: coordinator.url, tls: { ca: ca.cert, cert: app.cert, key: app.key } });
    expect(await withCert.newGid()).toMatch(/\S/);

    const untrusted = createAccordClient({ address: coordinator.url, tls: { ca: ca.cert, cert: rogue.cert, key: rogue.key }, retries: 0 });
    const error = await untrusted.newGid().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect(certificateRequired(error)).toBe(false);
  });
});

describe("SDK against a TLS 1.2 server that requires client certificates", () => {
  // TLS 1.2 has no certificate_required alert: the server answers handshake_failure.
  let server: Http2SecureServer;
  let url: string;

  beforeAll(async () => {
    server = createSecureServer({
      cert: serverCert.cert,
      key: serverCert.key,
      ca: ca.cert,
      maxVersion: "TLSv1.2",
      requestCert: true,
      rejectUnauthorized: true,
    });
    server.on("stream", (stream) => stream.respond({ ":status": 404 }, { endStream: true }));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("reports UNAUTHENTICATED when this client has no certificate to send", async () => {
    const error = await createAccordClient({ address: url, tls: { ca: ca.cert } })
      .newGid()
      .catch((e: unknown) => e);
    expect(certificateRequired(error)).toBe(true);
    expect(causeCodes(error)).toContain("ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE");
  });
});
