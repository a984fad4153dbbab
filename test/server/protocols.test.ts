import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import {
  CoordinatorService,
  GetTransactionRequestSchema,
  GetTransactionResponseSchema,
  NewGidRequestSchema,
  NewGidResponseSchema,
} from "../../gen/accord/v1/coordinator_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  Health,
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as Serving,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { grpcClient, grpcUnary } from "../support/grpc-client.js";
import { sqliteBackend } from "../support/stores.js";

const exec = promisify(execFile);
const backend = sqliteBackend();
let coordinator: RunningCoordinator;

beforeAll(async () => {
  // Admin calls are open here (by default nobody may make them; test/security checks that).
  coordinator = await startTestCoordinator(await backend.freshUrl(), { limits: { maxMessageBytes: 64 * 1024 }, security: { adminCallers: "*" } });
});
afterAll(async () => {
  await coordinator.stop();
  await backend.cleanup();
});

describe("one port, three protocols", () => {
  it("answers NewGid over gRPC from @grpc/grpc-js", async () => {
    const client = grpcClient(coordinator.url);
    const reply = await grpcUnary(client, "/accord.v1.CoordinatorService/NewGid", NewGidRequestSchema, NewGidResponseSchema, {});
    client.close();
    expect(reply.gid).toMatch(/^[0-9A-Z]{26}$/);
  });

  it("answers NewGid in Connect JSON over HTTP/1.1 (what curl does)", async () => {
    const res = await fetch(`${coordinator.url}/accord.v1.CoordinatorService/NewGid`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { gid: string };
    expect(body.gid).toMatch(/^[0-9A-Z]{26}$/);
  });

  it("answers over gRPC-Web, Connect and gRPC transports of connect-node", async () => {
    const transports = [
      createGrpcWebTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }),
      createConnectTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }),
      createConnectTransport({ baseUrl: coordinator.url, httpVersion: "2" }),
      createGrpcTransport({ baseUrl: coordinator.url }),
    ];
    const gids = await Promise.all(transports.map((t) => createClient(CoordinatorService, t).newGid({})));
    expect(new Set(gids.map((g) => g.gid)).size).toBe(4);
  });

  it("sorts gids by creation time", async () => {
    const client = createClient(CoordinatorService, createConnectTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }));
    const first = (await client.newGid({})).gid;
    await new Promise((r) => setTimeout(r, 5));
    const second = (await client.newGid({})).gid;
    expect(first < second).toBe(true);
  });

  // buf curl through npx: a few seconds here, more on a busy machine.
  it("lists the accord.v1 services through gRPC reflection (buf curl)", { timeout: 120_000 }, async () => {
    const { stdout } = await exec("npx", ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", coordinator.url]);
    expect(stdout).toContain("accord.v1.CoordinatorService/Submit");
    expect(stdout).toContain("accord.v1.AdminService/RetryTransaction");
    expect(stdout).toContain("grpc.health.v1.Health/Check");
  });

  it("describes a method's request through reflection, so buf curl can call without proto files", { timeout: 120_000 }, async () => {
    const { stdout } = await exec("npx", [
      "--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge",
      "-d", "{}", `${coordinator.url}/accord.v1.CoordinatorService/NewGid`,
    ]);
    expect(JSON.parse(stdout).gid).toMatch(/^[0-9A-Z]{26}$/);
  });
});

describe("health", () => {
  it("reports SERVING over grpc.health.v1 and /healthz while the store answers", async () => {
    const client = grpcClient(coordinator.url);
    const reply = await grpcUnary(client, "/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, { service: "" });
    const named = await grpcUnary(client, "/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, {
      service: "accord.v1.CoordinatorService",
    });
    await expect(
      grpcUnary(client, "/grpc.health.v1.Health/Check", HealthCheckRequestSchema, HealthCheckResponseSchema, { service: "no.Such" }),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    client.close();
    expect(reply.status).toBe(Serving.SERVING);
    expect(named.status).toBe(Serving.SERVING);
    const res = await fetch(`${coordinator.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "SERVING" });
  });

  it("streams the status on Health/Watch", async () => {
    const client = createClient(Health, createGrpcTransport({ baseUrl: coordinator.url }));
    const abort = new AbortController();
    const stream = client.watch({ service: "" }, { signal: abort.signal })[Symbol.asyncIterator]();
    const first = await stream.next();
    abort.abort();
    expect(first.value?.status).toBe(Serving.SERVING);
  });
});

describe("bad input", () => {
  const connect = () => createClient(CoordinatorService, createConnectTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }));

  it("answers NOT_FOUND for an unknown gid", async () => {
    const client = grpcClient(coordinator.url);
    await expect(
      grpcUnary(client, "/accord.v1.CoordinatorService/GetTransaction", GetTransactionRequestSchema, GetTransactionResponseSchema, { gid: "no-such-gid" }),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    client.close();
  });

  it.each([
    ["", "is required"],
    ["has space", "must contain only"],
    ["x".repeat(129), "at most 128"],
    ["../etc/passwd", "must contain only"],
    ["a'; DROP TABLE transactions; --", "must contain only"],
  ])("answers INVALID_ARGUMENT naming the gid field for %j", async (gid, description) => {
    const error = await connect().getTransaction({ gid }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    const ce = error as ConnectError;
    expect(ce.code).toBe(Code.InvalidArgument);
    expect(ce.rawMessage).toContain("gid");
    expect(ce.rawMessage).toContain(description);
    const [detail] = ce.findDetails(BadRequestSchema);
    expect(detail?.fieldViolations[0]?.field).toBe("gid");
  });

  it("sends the field violation over gRPC status details too", async () => {
    const client = grpcClient(coordinator.url);
    const error = await grpcUnary(client, "/accord.v1.CoordinatorService/GetTransaction", GetTransactionRequestSchema, GetTransactionResponseSchema, {
      gid: "bad gid",
    }).catch((e: grpc.ServiceError) => e);
    client.close();
    expect(error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const details = (error as grpc.ServiceError).metadata.get("grpc-status-details-bin")[0];
    expect(details).toBeInstanceOf(Buffer);
    // google.rpc.Status { details: [Any{ BadRequest }] }: the field name is inside.
    expect((details as Buffer).toString("latin1")).toContain("google.rpc.BadRequest");
  });

  it("rejects a message over the size limit with RESOURCE_EXHAUSTED and keeps serving", async () => {
    const client = grpcClient(coordinator.url);
    const error = await grpcUnary(client, "/accord.v1.CoordinatorService/GetTransaction", GetTransactionRequestSchema, GetTransactionResponseSchema, {
      gid: "g".repeat(200 * 1024),
    }).catch((e: grpc.ServiceError) => e);
    expect(error).toMatchObject({ code: grpc.status.RESOURCE_EXHAUSTED });
    const ok = await grpcUnary(client, "/accord.v1.CoordinatorService/NewGid", NewGidRequestSchema, NewGidResponseSchema, {});
    client.close();
    expect(ok.gid).not.toBe("");
  });

  // connect-es, like grpc-go and grpc-java, reports undecodable request bytes as INTERNAL.
  it("rejects malformed protobuf bytes with a parse error and keeps serving", async () => {
    const res = await fetch(`${coordinator.url}/accord.v1.CoordinatorService/GetTransaction`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
    });
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ code: "internal", message: expect.stringContaining("parse binary") });
    expect((await connect().newGid({})).gid).not.toBe("");
  });

  it("serves AdminService over Connect to the callers it lists", async () => {
    const admin = createClient(AdminService, createConnectTransport({ baseUrl: coordinator.url, httpVersion: "1.1" }));
    const { configJson } = await admin.getConfig({});
    expect(JSON.parse(configJson)).toMatchObject({ limits: { maxMessageBytes: 64 * 1024 }, security: { adminCallers: ["*"] } });
  });

  it("answers 400 to HTTP/1.1 garbage on the port and keeps serving", async () => {
    const { connect: dial } = await import("node:net");
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = dial(coordinator.port, "127.0.0.1", () => socket.write("GARBAGE \x00\x01\x02 nonsense\r\n\r\n"));
      let data = "";
      socket.on("data", (d) => (data += d.toString()));
      socket.on("close", () => resolve(data));
      socket.on("error", reject);
    });
    expect(reply).toMatch(/^HTTP\/1.1 400/);
    expect((await connect().newGid({})).gid).not.toBe("");
  });
});
