import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../server/config.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestPki, type CertFiles } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { freePort } from "../support/free-port.js";
import { sqliteBackend } from "../support/stores.js";

interface Answer {
  status: number;
  body: string;
}

function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string; ca?: Buffer } = {}): Promise<Answer> {
  const { method = "GET", headers, body, ca } = options;
  return new Promise((resolve, reject) => {
    const req = (url.startsWith("https:") ? httpsRequest : httpRequest)(url, { method, headers, ca, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode!, body: text }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error(`no answer from ${url}`)));
    req.on("error", reject);
    req.end(body);
  });
}

const backend = sqliteBackend();
let pki: TestPki;
let ca: CertFiles;
let coordinator: RunningCoordinator;
let opsPort: number;

beforeAll(async () => {
  pki = await TestPki.create();
  ca = await pki.ca("ops-test-ca");
  const server = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
  opsPort = await freePort();
  coordinator = await startTestCoordinator(await backend.freshUrl(), {
    ops: { port: opsPort },
    security: { tlsCertFile: server.certFile, tlsKeyFile: server.keyFile, tlsCaFile: ca.certFile, mtls: "required" },
  });
});
afterAll(async () => {
  await coordinator?.stop();
  await backend.cleanup();
  await pki.cleanup();
});

describe("ops listener", () => {
  it("answers GET /healthz in plain HTTP, without a client certificate, on loopback", async () => {
    expect(coordinator.opsUrl).toBe(`http://127.0.0.1:${opsPort}`);
    const answer = await send(`${coordinator.opsUrl}/healthz`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ status: "SERVING", store: "sqlite" });
  });

  it("leaves the RPC port refusing callers without a certificate", async () => {
    await expect(send(`${coordinator.url}/healthz`, { ca: ca.cert })).rejects.toThrow(/certificate required/);
    await expect(
      send(`${coordinator.url}/accord.v1.CoordinatorService/NewGid`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}", ca: ca.cert }),
    ).rejects.toThrow(/certificate required/);
  });

  it.each([
    ["POST", "/accord.v1.CoordinatorService/NewGid", "application/json", "{}"],
    ["POST", "/accord.v1.CoordinatorService/ListTransactions", "application/json", "{}"],
    ["POST", "/accord.v1.AdminService/GetConfig", "application/json", "{}"],
    ["POST", "/grpc.health.v1.Health/Check", "application/grpc-web+proto", "\0\0\0\0\0"],
    ["POST", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "application/grpc-web+proto", "\0\0\0\0\0"],
    ["GET", "/", undefined, undefined],
    ["POST", "/healthz", "application/json", "{}"],
  ])("serves no RPCs: %s %s is 404", async (method, path, contentType, body) => {
    const answer = await send(`${coordinator.opsUrl}${path}`, { method, headers: contentType ? { "content-type": contentType } : {}, body });
    expect(answer.status).toBe(404);
  });

  it("is off by default, and configured by ops.port and ops.host (flags, environment, file)", async () => {
    const plain = await startTestCoordinator(await backend.freshUrl());
    try {
      expect(plain.opsUrl).toBeUndefined();
    } finally {
      await plain.stop();
    }
    expect(loadConfig({ argv: [], env: {} }).ops).toEqual({ host: "127.0.0.1", port: 0 });
    expect(loadConfig({ argv: [], env: { ACCORD_OPS_PORT: "7461", ACCORD_OPS_HOST: "0.0.0.0" } }).ops).toEqual({ host: "0.0.0.0", port: 7461 });
    expect(loadConfig({ argv: ["--ops-port", "9000"], env: {} }).ops.port).toBe(9000);
    expect(() => loadConfig({ argv: [], env: { ACCORD_OPS_PORT: "70000" } })).toThrow(ConfigError);
    expect(() => loadConfig({ argv: [], env: { ACCORD_OPS_HOST: " " } })).toThrow(/ops\.host/);
  });

  it("stops with the coordinator", async () => {
    const port = await freePort();
    const started = await startTestCoordinator(await backend.freshUrl(), { ops: { port } });
    expect((await send(`${started.opsUrl}/healthz`)).status).toBe(200);
    await started.stop();
    await expect(send(`http://127.0.0.1:${port}/healthz`)).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
