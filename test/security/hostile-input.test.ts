import { connect as dial } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService, GetTransactionRequestSchema } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// Every hostile request gets a clear code, nothing is written for it, and the server keeps
// serving everyone else throughout.
const backend = sqliteBackend();
const svc = new TestBranchService();
let coordinator: RunningCoordinator;
let client: Client<typeof CoordinatorService>;

beforeAll(async () => {
  await svc.listenHttp();
  coordinator = await startTestCoordinator(await backend.freshUrl(), {
    limits: { maxMessageBytes: 1024 * 1024, maxPayloadBytes: 64 * 1024 },
  });
  client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
});
afterAll(async () => {
  await coordinator.stop();
  await svc.close();
  await backend.cleanup();
});

const valid = () => ({ action: svc.httpUrl("/ok"), compensate: svc.httpUrl("/undo") });
const codeOf = async (call: Promise<unknown>) => {
  const error = await call.then(() => undefined, (e: unknown) => e);
  return error instanceof ConnectError ? { code: error.code, message: error.rawMessage } : undefined;
};
const post = (path: string, body: string | Uint8Array, contentType = "application/json") =>
  fetch(`${coordinator.url}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
const stillServing = async (c = client) => expect((await c.newGid({})).gid).toMatch(/^[0-9A-Z]{26}$/);

describe("hostile input", () => {
  it("refuses branch targets outside the allowlist, naming the branch, without calling them", async () => {
    for (const target of ["http://10.0.0.1/admin", "http://169.254.169.254/latest/meta-data", "grpc://internal.example:443/a.B/C", "http://localhost.evil.example/x"]) {
      const result = await codeOf(client.submit({ gid: `allow-${Date.now()}`, mode: Mode.SAGA, steps: [{ ...valid(), action: target }] }));
      expect(result?.code).toBe(Code.InvalidArgument);
      expect(result?.message).toMatch(/^steps\[0\]\.action: host ".*" is not in the branch-target allowlist/);
    }
    const scheme = await codeOf(client.submit({ gid: "allow-scheme", mode: Mode.SAGA, steps: [{ ...valid(), compensate: "file:///etc/passwd" }] }));
    expect(scheme?.message).toMatch(/^steps\[0\]\.compensate: has unsupported scheme "file"/);
  });

  it("refuses oversize payloads and messages", async () => {
    const payload = await codeOf(client.submit({ gid: "big-payload", mode: Mode.SAGA, steps: [{ ...valid(), payload: new Uint8Array(64 * 1024 + 1) }] }));
    expect(payload).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^steps\[0\]\.payload/) });
    const message = await codeOf(client.submit({ gid: "big-message", mode: Mode.SAGA, steps: [{ ...valid(), payload: new Uint8Array(2 * 1024 * 1024) }] }));
    expect(message?.code).toBe(Code.ResourceExhausted);
  });

  it("refuses 10,000 branches with INVALID_ARGUMENT", async () => {
    const steps = Array.from({ length: 10_000 }, valid);
    const result = await codeOf(client.submit({ gid: "ten-thousand", mode: Mode.SAGA, steps }));
    expect(result).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^steps: at most 1000 steps/) });
  });

  it("answers deeply nested JSON with a client error", async () => {
    const depth = 100_000;
    const res = await post("/accord.v1.CoordinatorService/GetTransaction", `{"gid":${"[".repeat(depth)}${"]".repeat(depth)}}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    await stillServing();
  });

  it("refuses invalid UTF-8 in a string field", async () => {
    const bytes = toBinary(GetTransactionRequestSchema, create(GetTransactionRequestSchema, { gid: "ab" }));
    bytes[2] = 0xff; // "a" becomes an invalid UTF-8 byte
    const res = await post("/accord.v1.CoordinatorService/GetTransaction", bytes, "application/proto");
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(600);
    await stillServing();
  });

  it("refuses malformed protobuf in a gRPC frame", async () => {
    const transport = new grpc.Client(`127.0.0.1:${coordinator.port}`, grpc.credentials.createInsecure());
    const error = await new Promise<grpc.ServiceError>((resolve) =>
      transport.makeUnaryRequest(
        "/accord.v1.CoordinatorService/Submit",
        () => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x12]),
        (b: Buffer) => b,
        {},
        (e) => resolve(e!),
      ),
    );
    transport.close();
    expect([grpc.status.INTERNAL, grpc.status.INVALID_ARGUMENT]).toContain(error.code);
    await stillServing();
  });

  it("answers gids with path or SQL metacharacters with INVALID_ARGUMENT", async () => {
    for (const gid of ["../../etc/passwd", "a/b", "x'; DROP TABLE transactions; --", "a\u0000b", "%00", "g id", "😀"]) {
      const result = await codeOf(client.submit({ gid, mode: Mode.SAGA, steps: [valid()] }));
      expect(result).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^gid: /) });
    }
  });

  it("closes idle and slowloris connections while serving others", async () => {
    // Its own coordinator with a 500 ms inactivity timeout: on the shared one, a timeout that short
    // could cut the big requests above while a busy machine is still working on them.
    const guarded = await startTestCoordinator(await backend.freshUrl(), { limits: { idleConnectionMs: 500 } });
    const guardedClient = createClient(CoordinatorService, createGrpcTransport({ baseUrl: guarded.url }));
    try {
      // Every connection is closed by the server (the client never closes them). The property is
      // a timeout, so their lifetimes are checked too, against 10× the configured 500 ms: far from
      // what a slow machine adds, and still short of the defaults (10 s for headers, 60 s idle).
      const lifetimes: number[] = [];
      const open = (first?: string) => {
        const socket = dial(guarded.port, "127.0.0.1");
        const opened = Date.now();
        if (first) socket.on("connect", () => socket.write(first)); // never finishes
        socket.on("close", () => lifetimes.push(Date.now() - opened));
        socket.on("error", () => {});
      };
      for (let i = 0; i < 50; i++) open("POST /accord.v1.CoordinatorService/NewGid HTTP/1.1\r\nHost: x\r\n");
      open(); // idle: says nothing at all
      await stillServing(guardedClient);
      await waitUntil(async () => lifetimes.length === 51, () => `the server to close all 51 idle and slowloris connections (${lifetimes.length} closed)`, 20_000);
      expect(Math.max(...lifetimes)).toBeLessThan(5000);
      await stillServing(guardedClient);
    } finally {
      await guarded.stop();
    }
  });

  it("wrote nothing for any of it", async () => {
    expect((await client.listTransactions({})).transactions).toEqual([]);
  });
});
