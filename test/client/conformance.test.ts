import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { createClient as createLibsql, type Client as Libsql, type Transaction } from "@libsql/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BranchFailure,
  branchInfo,
  checkBranchConformance,
  ConformanceOptionsError,
  createSqliteBarrier,
  formatConformanceReport,
  grpcStatusFor,
  httpStatusFor,
  type BranchConformanceOptions,
  type BranchInfo,
  type ConformanceReport,
} from "../../client/index.js";

const exec = promisify(execFile);

/** The accord-* headers and content type of one call, as the service saw them. */
type Seen = Record<string, string | undefined>;

const readBody = (req: IncomingMessage) =>
  new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const close = (server: Server) => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));

const json = (res: ServerResponse, body: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));

/**
 * A correct branch service, as the README says to write one: every operation behind the SDK's
 * barrier on SQLite, its business an `effects` row written in the barrier's local transaction;
 * a payload {"refuse": true} is refused with BranchFailure. Serves HTTP and gRPC, and the probe.
 */
async function startCorrectService() {
  const dir = await mkdtemp(join(tmpdir(), "accord-conformance-"));
  const db: Libsql = createLibsql({ url: `file:${join(dir, "service.db")}`, timeout: 5000 });
  await db.execute("PRAGMA journal_mode = WAL");
  await db.execute("CREATE TABLE effects (gid TEXT, branch_id TEXT, op TEXT)");
  const barrier = createSqliteBarrier(db);
  await barrier.createTable();
  const seen: Seen[] = [];
  const effect = (tx: Transaction, gid: string, branchId: string, op: string) => tx.execute({ sql: "INSERT INTO effects VALUES (?, ?, ?)", args: [gid, branchId, op] }).then(() => undefined);
  const operate = async (info: BranchInfo, body: Buffer) => {
    if (info.op === "query") return barrier.queryPrepared(info.gid);
    const payload = JSON.parse(body.toString() || "{}") as { refuse?: boolean };
    await barrier.call(info, async (tx) => {
      if (payload.refuse) throw new BranchFailure("insufficient funds");
      await effect(tx, info.gid, info.branchId, info.op);
    });
  };
  const operations = new Set(["/saga/action", "/saga/compensate", "/tcc/try", "/tcc/confirm", "/tcc/cancel", "/msg/action", "/msg/query"]);

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    void (async () => {
      const body = await readBody(req);
      if (url.pathname === "/probe") {
        const rows = await db.execute({ sql: "SELECT op, COUNT(*) AS n FROM effects WHERE gid = ? AND branch_id = ? GROUP BY op", args: [url.searchParams.get("gid"), url.searchParams.get("branch_id")] });
        return json(res, { effects: Object.fromEntries(rows.rows.map((r) => [r.op, Number(r.n)])) });
      }
      if (url.pathname === "/msg/local") {
        // The application's local transaction of a message, behind the barrier.
        const gid = String(req.headers["accord-gid"]);
        return barrier.msg(gid, (tx) => effect(tx, gid, "00", "msg")).then(
          () => res.writeHead(200).end(),
          (error: Error) => res.writeHead(500).end(error.message),
        );
      }
      if (!operations.has(url.pathname)) return res.writeHead(404).end("no such operation");
      seen.push({ path: url.pathname, ...Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)])) });
      await operate(branchInfo(req.headers), body).then(
        () => res.writeHead(200).end(),
        (error: unknown) => res.writeHead(httpStatusFor(error)).end(String(error)),
      );
    })().catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  const url = await listen(http);

  const raw = (name: string): grpc.MethodDefinition<Buffer, Buffer> => ({
    path: `/test.Branch/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  });
  const unary: grpc.handleUnaryCall<Buffer, Buffer> = (call, callback) => {
    operate(branchInfo(call.metadata.getMap() as Record<string, string>), call.request).then(
      () => callback(null, Buffer.alloc(0)),
      (error: unknown) => callback({ code: grpcStatusFor(error), details: String(error) }),
    );
  };
  const grpcServer = new grpc.Server();
  grpcServer.addService({ Action: raw("Action"), Compensate: raw("Compensate") }, { Action: unary, Compensate: unary });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
  );

  return {
    url,
    grpcUrl: `grpc://127.0.0.1:${grpcPort}/test.Branch`,
    seen,
    async close() {
      await close(http);
      await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
      db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A branch service written without the barrier: it applies every call it gets (duplicates
 * twice), refuses an overdraft with 400 instead of 409, and either refuses a compensation of an
 * unknown transfer with 500 or, with `nullCompensationOk`, answers it 200 but lets the late
 * action through (hanging). Its MSG back-check always says "committed".
 */
async function startWrongService(options: { nullCompensationOk?: boolean } = {}) {
  const effects = new Map<string, Record<string, number>>();
  const count = (gid: string, op: string) => effects.get(gid)?.[op] ?? 0;
  const add = (gid: string, op: string) => effects.set(gid, { ...effects.get(gid), [op]: count(gid, op) + 1 });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    void readBody(req).then((body) => {
      const gid = String(req.headers["accord-gid"]);
      const payload = body.length ? (JSON.parse(body.toString()) as { refuse?: boolean }) : {};
      switch (url.pathname) {
        case "/probe":
          return json(res, { effects: effects.get(url.searchParams.get("gid") ?? "") ?? {} });
        case "/saga/action":
          if (payload.refuse) return res.writeHead(400).end("insufficient funds");
          add(gid, "action");
          return res.writeHead(200).end();
        case "/saga/compensate":
          if (count(gid, "action") === 0) return options.nullCompensationOk ? res.writeHead(200).end() : res.writeHead(500).end(`no transfer ${gid} to compensate`);
          add(gid, "compensate");
          return res.writeHead(200).end();
        case "/msg/action":
          add(gid, "action");
          return res.writeHead(200).end();
        case "/msg/query":
        case "/msg/local":
          return res.writeHead(200).end();
        default:
          return res.writeHead(404).end("not found");
      }
    });
  });
  const url = await listen(server);
  return { url, close: () => close(server) };
}

const byId = (report: ConformanceReport) => Object.fromEntries(report.rules.map((r) => [r.id, r]));
const failedIds = (report: ConformanceReport) => report.rules.filter((r) => r.status === "fail").map((r) => r.id).sort();
const expectAllPass = (report: ConformanceReport) => {
  expect(report.rules.filter((r) => r.status !== "pass"), formatConformanceReport(report)).toEqual([]);
  expect(report.ok).toBe(true);
};

describe("branch conformance kit", () => {
  let good: Awaited<ReturnType<typeof startCorrectService>>;
  let bad: Awaited<ReturnType<typeof startWrongService>>;
  let hanging: Awaited<ReturnType<typeof startWrongService>>;
  beforeAll(async () => {
    [good, bad, hanging] = await Promise.all([startCorrectService(), startWrongService(), startWrongService({ nullCompensationOk: true })]);
  });
  afterAll(async () => {
    await Promise.all([good?.close(), bad?.close(), hanging?.close()]);
  });

  const saga = (base: string, more: Partial<BranchConformanceOptions> = {}): BranchConformanceOptions => ({
    action: `${base}/saga/action`,
    compensate: `${base}/saga/compensate`,
    payload: { amount: 1 },
    refusePayload: { refuse: true },
    probe: `${base}/probe`,
    ...more,
  });

  it("passes every SAGA rule for a service behind the SDK's barrier, calling it as the coordinator does", async () => {
    good.seen.length = 0;
    const report = await checkBranchConformance(saga(good.url));
    expectAllPass(report);
    expect(report.rules.map((r) => r.id)).toEqual([
      "action-2xx",
      "action-effect",
      "duplicate-action-2xx",
      "duplicate-action-no-effect",
      "compensate-2xx",
      "compensate-effect",
      "duplicate-compensate-2xx",
      "duplicate-compensate-no-effect",
      "concurrent-action-2xx",
      "concurrent-action-no-effect",
      "null-compensate-2xx",
      "null-compensate-no-effect",
      "no-hanging",
      "refused-action-409",
      "refused-action-compensate-2xx",
      "refused-action-no-effect",
      "outcome-codes",
    ]);
    expect(byId(report)["no-hanging"]!.calls.map((c) => `${c.op} ${c.answer.text}`)).toEqual(["compensate HTTP 200", "action HTTP 409"]);
    // The coordinator's headers on every call, a fresh gid per situation.
    for (const h of good.seen) {
      expect(h).toMatchObject({ "accord-mode": "saga", "accord-branch-id": "01", "accord-fence": "1", "content-type": "application/json" });
      expect(h["accord-gid"]).toMatch(/^conformance-[A-Za-z0-9._:-]+$/);
      expect(h["accord-op"]).toBe(h.path === "/saga/action" ? "action" : "compensate");
      expect(h.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    }
    expect(new Set(good.seen.map((h) => h["accord-gid"])).size).toBe(5); // then-compensate, concurrent, null, late, refused
  });

  it("without a probe checks statuses only: effect rules are skipped, a refused late action still passes", async () => {
    const report = await checkBranchConformance(saga(good.url, { probe: undefined, refusePayload: undefined }));
    expect(failedIds(report)).toEqual([]);
    const skipped = report.rules.filter((r) => r.status === "skip").map((r) => r.id);
    expect(skipped).toEqual([
      "action-effect",
      "duplicate-action-no-effect",
      "compensate-effect",
      "duplicate-compensate-no-effect",
      "concurrent-action-no-effect",
      "null-compensate-no-effect",
      "refused-action-409",
      "refused-action-compensate-2xx",
      "refused-action-no-effect",
    ]);
    expect(byId(report)["duplicate-action-no-effect"]!.detail).toContain("needs a probe");
    expect(byId(report)["no-hanging"]!.status).toBe("pass");
  });

  it("passes every TCC rule (try from the application, confirm and cancel from the coordinator)", async () => {
    good.seen.length = 0;
    const report = await checkBranchConformance({
      mode: "tcc",
      try: `${good.url}/tcc/try`,
      confirm: `${good.url}/tcc/confirm`,
      cancel: `${good.url}/tcc/cancel`,
      payload: { amount: 1 },
      refusePayload: { refuse: true },
      probe: `${good.url}/probe`,
    });
    expectAllPass(report);
    expect(report.rules.map((r) => r.id)).toEqual([
      "try-2xx",
      "try-effect",
      "duplicate-try-2xx",
      "duplicate-try-no-effect",
      "confirm-2xx",
      "confirm-effect",
      "duplicate-confirm-2xx",
      "duplicate-confirm-no-effect",
      "cancel-2xx",
      "cancel-effect",
      "duplicate-cancel-2xx",
      "duplicate-cancel-no-effect",
      "concurrent-try-2xx",
      "concurrent-try-no-effect",
      "null-cancel-2xx",
      "null-cancel-no-effect",
      "no-hanging",
      "refused-try-409",
      "refused-try-cancel-2xx",
      "refused-try-no-effect",
      "outcome-codes",
    ]);
    // Like the SDK's TwoPhaseContext, a try carries no fence; confirm and cancel come from the coordinator.
    expect(good.seen.filter((h) => h["accord-op"] === "try").every((h) => h["accord-fence"] === undefined)).toBe(true);
    expect(good.seen.filter((h) => h["accord-op"] !== "try").every((h) => h["accord-fence"] === "1" && h["accord-mode"] === "tcc")).toBe(true);
  });

  it("passes every MSG rule, the back-check included, with the local-transaction hook", async () => {
    good.seen.length = 0;
    const report = await checkBranchConformance({
      mode: "msg",
      action: `${good.url}/msg/action`,
      queryPrepared: `${good.url}/msg/query`,
      localTransaction: `${good.url}/msg/local`,
      probe: `${good.url}/probe`,
    });
    expectAllPass(report);
    expect(report.rules.map((r) => r.id)).toEqual([
      "action-2xx",
      "action-effect",
      "duplicate-action-2xx",
      "duplicate-action-no-effect",
      "concurrent-action-2xx",
      "concurrent-action-no-effect",
      "query-uncommitted-409",
      "query-committed-2xx",
      "late-local-transaction-refused",
      "outcome-codes",
    ]);
    expect(good.seen.filter((h) => h.path === "/msg/query").every((h) => h["accord-op"] === "query" && h["accord-branch-id"] === "00")).toBe(true);
  });

  it("calls gRPC targets the same way (metadata, raw payload bytes, status codes)", async () => {
    const report = await checkBranchConformance(saga(good.url, { action: `${good.grpcUrl}/Action`, compensate: `${good.grpcUrl}/Compensate` }));
    expectAllPass(report);
    expect(byId(report)["no-hanging"]!.calls.map((c) => c.answer.text)).toEqual(["gRPC 0 OK", "gRPC 10 ABORTED"]);
  });

  it("fails the rules a service without the barrier breaks, saying what it saw and why it matters", async () => {
    const report = await checkBranchConformance(saga(bad.url));
    expect(report.ok).toBe(false);
    expect(failedIds(report)).toEqual(
      [
        "duplicate-action-no-effect",
        "duplicate-compensate-no-effect",
        "concurrent-action-no-effect",
        "null-compensate-2xx",
        "refused-action-409",
        "refused-action-compensate-2xx",
        "outcome-codes",
      ].sort(),
    );
    const rule = byId(report);
    expect(rule["duplicate-action-2xx"]!.status).toBe("pass"); // the status alone looks fine…
    expect(rule["duplicate-action-no-effect"]!.detail).toMatch(/the probe counts action 2 for gid conformance-\S+, expected action 1: .*barrier/); // …the probe shows it
    expect(rule["duplicate-compensate-no-effect"]!.detail).toContain("counts compensate 2");
    expect(rule["concurrent-action-no-effect"]!.detail).toContain("counts action 3");
    expect(rule["null-compensate-2xx"]!.detail).toMatch(/answered HTTP 500 \("no transfer \S+ to compensate"\): an error: the coordinator retries .*with nothing to undo, answer 2xx/);
    // The late action cannot be staged after a refused compensation: skipped, not counted twice.
    expect(rule["no-hanging"]!.status).toBe("skip");
    expect(rule["no-hanging"]!.detail).toContain("could not be staged: the compensate before the action answered HTTP 500");
    expect(rule["refused-action-409"]!.detail).toContain("answered HTTP 400");
    expect(rule["refused-action-409"]!.detail).toContain("outside the branch contract");
    expect(rule["outcome-codes"]!.detail).toMatch(/^action → HTTP 400: .*retried for ever/);
    expect(formatConformanceReport(report)).toMatch(/saga: 9 passed, 7 failed, 1 skipped — failed: duplicate-action-no-effect, /);
  });

  it("catches hanging: a null compensation answered 200 that lets the late action through", async () => {
    const probed = byId(await checkBranchConformance(saga(hanging.url, { refusePayload: undefined })));
    expect(probed["null-compensate-2xx"]!.status).toBe("pass");
    expect(probed["no-hanging"]!.status).toBe("fail");
    expect(probed["no-hanging"]!.detail).toMatch(/counts action 1, compensate 0 .*expected action 0, compensate 0: the late action took effect/);
    // A 2xx alone cannot tell: without a probe the rule is skipped, not passed.
    const unprobed = byId(await checkBranchConformance(saga(hanging.url, { refusePayload: undefined, probe: undefined })));
    expect(unprobed["no-hanging"]!.status).toBe("skip");
    expect(unprobed["no-hanging"]!.detail).toContain("answered HTTP 200; whether it took effect needs a probe");
  });

  it("fails an MSG back-check that says committed for a message that never ran", async () => {
    const report = await checkBranchConformance({
      mode: "msg",
      action: `${bad.url}/msg/action`,
      queryPrepared: `${bad.url}/msg/query`,
      localTransaction: `${bad.url}/msg/local`,
      probe: `${bad.url}/probe`,
    });
    expect(failedIds(report)).toEqual(["concurrent-action-no-effect", "duplicate-action-no-effect", "late-local-transaction-refused", "query-uncommitted-409"]);
    expect(byId(report)["query-uncommitted-409"]!.detail).toContain("SUCCESS: the coordinator would run the message's branches");
    expect(byId(report)["late-local-transaction-refused"]!.detail).toContain("the message failed, yet its local work is in place");
  });

  it("flags a target the service does not serve (404) and one that does not answer", async () => {
    const missing = byId(await checkBranchConformance({ action: `${bad.url}/nowhere`, compensate: `${bad.url}/saga/compensate`, probe: `${bad.url}/probe` }));
    expect(missing["action-2xx"]!.status).toBe("fail");
    expect(missing["action-2xx"]!.detail).toContain("answered HTTP 404");
    expect(missing["duplicate-action-2xx"]!.status).toBe("skip");
    expect(missing["outcome-codes"]!.detail).toContain("action → HTTP 404");
    const closed = await startWrongService();
    await closed.close(); // a port nobody listens on any more
    const down = byId(await checkBranchConformance({ action: `${closed.url}/saga/action`, compensate: `${closed.url}/saga/compensate`, timeoutMs: 2000 }));
    expect(down["action-2xx"]!.detail).toContain("no answer: ECONNREFUSED");
    expect(down["outcome-codes"]!.status).toBe("pass"); // no answer is an error the coordinator retries, not a wrong status
  });

  it("refuses unusable options before calling anything", async () => {
    await expect(checkBranchConformance({ action: `${good.url}/saga/action` })).rejects.toThrow(ConformanceOptionsError);
    await expect(checkBranchConformance({ action: "ftp://x/y", compensate: "http://x/y" })).rejects.toThrow(/unsupported scheme "ftp"/);
    await expect(checkBranchConformance({ action: "grpc://127.0.0.1:1/NoMethod", compensate: "http://x/y" })).rejects.toThrow(/pkg.Service\/Method/);
    await expect(checkBranchConformance({ mode: "msg", action: "http://x/a", queryPrepared: "http://x/q", refusePayload: "{}" })).rejects.toThrow(/must succeed/);
    await expect(checkBranchConformance({ ...saga(good.url), probe: "not a url" })).rejects.toThrow(/probe: "not a url" must be an http\(s\) URL/);
  });

  describe("CLI", () => {
    const run = async (args: string[]) => {
      try {
        const { stdout } = await exec(process.execPath, ["--import", "tsx", "client/conformance/cli.ts", ...args]);
        return { code: 0, stdout };
      } catch (error) {
        const e = error as { code?: number; stdout?: string; stderr?: string };
        if (typeof e.code !== "number") throw error;
        return { code: e.code, stdout: `${e.stdout ?? ""}${e.stderr ?? ""}` };
      }
    };
    const args = (base: string) => ["--action", `${base}/saga/action`, "--compensate", `${base}/saga/compensate`, "--payload", '{"amount":1}', "--probe", `${base}/probe`];

    // Starts tsx in a child process: a few seconds here, far more on a busy machine.
    it("exits 0 and prints every rule for a conforming service (through npm run conformance)", { timeout: 120_000 }, async () => {
      const { stdout } = await exec("npm", ["run", "--silent", "conformance", "--", ...args(good.url), "--refuse-payload", '{"refuse":true}']);
      expect(stdout).toMatch(/^PASS {2}duplicate-action-no-effect {2,}a repeated action has no second effect$/m);
      expect(stdout).toContain("saga: 17 passed, 0 failed, 0 skipped");
    });

    it("exits 1 and names the failed rules for a service without the barrier", { timeout: 120_000 }, async () => {
      const { code, stdout } = await run(args(bad.url));
      expect(code).toBe(1);
      expect(stdout).toMatch(/^FAIL {2}duplicate-action-no-effect /m);
      expect(stdout).toMatch(/^FAIL {2}null-compensate-2xx /m);
      expect(stdout).toMatch(/failed: .*duplicate-action-no-effect.*null-compensate-2xx/);
    });

    it("prints the report as JSON with --json, and exits 2 on a usage error", { timeout: 120_000 }, async () => {
      const { code, stdout } = await run([...args(good.url), "--json"]);
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as ConformanceReport;
      expect(report.ok).toBe(true);
      expect(report.skipped).toBe(3); // no refusal payload given
      const usage = await run(["--action", `${good.url}/saga/action`]);
      expect(usage.code).toBe(2);
      expect(usage.stdout).toContain("mode saga needs the compensate target");
      expect(usage.stdout).toContain("usage: npm run conformance");
    });
  });
});
