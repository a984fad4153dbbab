import { Writable } from "node:stream";
import { createClient as createSqlClient } from "@libsql/client";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { createLogger, LOG_LINE_BYTES } from "../../server/observe/logger.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// Input that used to get through: a gid_prefix the store choked on (500 INTERNAL and a 300 KB log
// line), LIKE wildcards that matched anything, enum names JSON parsing dropped (widening a filter
// to everything). The coordinator logs through the production logger into `lines`, so every test
// here also checks that nothing it provoked wrote a line over the cap.
const backend = sqliteBackend();
const svc = new TestBranchService();
const lines: string[] = [];
let storeUrl: string;
let coordinator: RunningCoordinator;
let client: Client<typeof CoordinatorService>;

beforeAll(async () => {
  await svc.listenHttp();
  storeUrl = await backend.freshUrl();
  const logger = createLogger("info", new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }));
  coordinator = await startTestCoordinator(storeUrl, {}, logger);
  client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
});
afterAll(async () => {
  await coordinator.stop();
  await svc.close();
  await backend.cleanup();
});

const codeOf = async (call: Promise<unknown>) => {
  const error = await call.then(() => undefined, (e: unknown) => e);
  return error instanceof ConnectError ? { code: error.code, message: error.rawMessage } : undefined;
};
/** A Connect JSON call, as curl makes it. */
const postJson = async (method: string, body: string) => {
  const res = await fetch(`${coordinator.url}/accord.v1.CoordinatorService/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: res.status, body: (await res.json()) as { code?: string; message?: string; transactions?: { gid: string }[] } };
};
const submit = async (gid: string, payload = new Uint8Array()) => {
  await client.submit({ gid, mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/ok"), compensate: svc.httpUrl("/undo"), payload }] });
};
const listed = async (gidPrefix: string) => (await client.listTransactions({ gidPrefix })).transactions.map((t) => t.gid).sort();

describe("bad input", () => {
  it("refuses a gid_prefix that could not begin a gid with INVALID_ARGUMENT naming gid_prefix", async () => {
    for (const gidPrefix of ["x".repeat(100_000), "x".repeat(129), "pct%", "%", "a b", "x'; --", "a\\b", "é"]) {
      const result = await codeOf(client.listTransactions({ gidPrefix }));
      expect(result).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/^gid_prefix: /) });
    }
    // The 100,000 characters that answered 500 INTERNAL over Connect JSON.
    const res = await postJson("ListTransactions", JSON.stringify({ gidPrefix: "x".repeat(100_000) }));
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^gid_prefix: must be at most 128 characters/) });
    expect(lines.filter((l) => l.includes('"request failed"'))).toEqual([]);
  });

  it("matches a gid_prefix literally: '_' and case", async () => {
    for (const gid of ["und_1", "undX1", "Case-1", "case-2"]) await submit(gid);
    expect(await listed("und_")).toEqual(["und_1"]);
    expect(await listed("Case")).toEqual(["Case-1"]);
    expect(await listed("und")).toEqual(["undX1", "und_1"]);
    expect(await listed("x".repeat(128))).toEqual([]);
  });

  it("refuses an unknown enum name in Connect JSON instead of dropping it", async () => {
    await submit("enum-1");
    for (const body of ['{"statuses":["BOGUS"]}', '{"statuses":["TRANSACTION_STATUS_SUCCEEDED","BOGUS"]}', '{"modes":["BOGUS"]}']) {
      const res = await postJson("ListTransactions", body);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: "invalid_argument", message: expect.stringMatching(/^cannot decode enum accord\.v1\.(TransactionStatus|Mode) from JSON: "BOGUS"$/) });
    }
    // Unknown fields are refused too: strict protobuf JSON, not connect's lenient default.
    expect(await postJson("ListTransactions", '{"gidPrefx":"enum-"}')).toMatchObject({ status: 400, body: { code: "invalid_argument", message: expect.stringContaining('key "gidPrefx" is unknown') } });
    // Known names still filter.
    const known = await postJson("ListTransactions", '{"gidPrefix":"enum-","statuses":["TRANSACTION_STATUS_SUBMITTED","TRANSACTION_STATUS_SUCCEEDED"],"modes":["MODE_SAGA"]}');
    expect(known).toMatchObject({ status: 200, body: { transactions: [{ gid: "enum-1" }] } });
  });

  it("refuses unknown enum numbers, in binary protobuf and in JSON, naming the field", async () => {
    expect(await codeOf(client.listTransactions({ statuses: [TransactionStatus.SUBMITTED, 99 as TransactionStatus] }))).toEqual({
      code: Code.InvalidArgument,
      message: "statuses[1]: unknown status 99",
    });
    expect(await codeOf(client.listTransactions({ modes: [99 as Mode] }))).toEqual({ code: Code.InvalidArgument, message: "modes[0]: unknown mode 99" });
    expect(await codeOf(client.listTransactions({ statuses: [TransactionStatus.UNSPECIFIED] }))).toMatchObject({ code: Code.InvalidArgument });
    expect(await postJson("ListTransactions", '{"statuses":[99]}')).toMatchObject({ status: 400, body: { code: "invalid_argument", message: "statuses[0]: unknown status 99" } });
  });

  it("bounds what a failing request writes to the log, however big the request", async () => {
    // A store that refuses every new branch with an error quoting the value it refused, as
    // database errors do (a bad value, a duplicate key): here the whole 512 KiB payload. SQLite's
    // RAISE takes no expression, so a JSON path error carries the payload into the message.
    const sql = createSqlClient({ url: storeUrl });
    await sql.execute("create trigger refuse_all before insert on branches begin select json_extract('{}', cast(new.payload as text)); end");
    try {
      const payload = new TextEncoder().encode(JSON.stringify({ note: "p".repeat(512 * 1024) }));
      for (let i = 0; i < 3; i++) {
        const result = await codeOf(submit(`huge-${i}`, payload));
        expect(result).toEqual({ code: Code.Internal, message: "internal error; the coordinator log has the details" });
      }
    } finally {
      await sql.execute("drop trigger refuse_all");
      sql.close();
    }
    await waitUntil(async () => lines.filter((l) => l.includes('"request failed"')).length === 3, "the three failures to be logged");
    const failures = lines.filter((l) => l.includes('"request failed"')).map((l) => JSON.parse(l) as { method: string; err: { message: string; stack: string } });
    for (const failure of failures) {
      expect(failure.method).toBe("accord.v1.CoordinatorService/Submit");
      // Cut, saying so, and still saying what failed.
      expect(failure.err.message).toMatch(/^SQLITE_ERROR: .*bad JSON path: '\{"note":"ppp.*…\[\d+ of \d+ chars cut\]$/);
      expect(failure.err.stack).toMatch(/\n {4}at /);
    }
    await submit("after-huge"); // the store works again
  });

  it("wrote no log line over the cap, for any of it", () => {
    expect(lines.length).toBeGreaterThan(0);
    const sizes = lines.map((l) => Buffer.byteLength(l));
    expect(Math.max(...sizes)).toBeLessThanOrEqual(LOG_LINE_BYTES);
  });
});
