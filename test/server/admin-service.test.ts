import { Writable } from "node:stream";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { AdminActionKind, BranchOp, BranchStatus, Mode, TransactionStatus, type Transaction } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { TestPki, type CertFiles } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { gate, waitUntil } from "../support/wait-until.js";

// AdminService over gRPC with mTLS: an operator identity may call it, an application may not.
// Each action changes the transaction through the engine's commands and is recorded on it.

let pki: TestPki;
let ca: CertFiles;
let opsCert: CertFiles;
let appCert: CertFiles;
let coordinator: RunningCoordinator;
let admin: Client<typeof AdminService>;
let app: Client<typeof CoordinatorService>;
const logs: string[] = [];
const svc = new TestBranchService();
const backend = sqliteBackend();
const OPERATOR = "spiffe://test/operator";

const clientAs = <S extends typeof AdminService | typeof CoordinatorService>(service: S, cert: CertFiles): Client<S> =>
  createClient(service, createGrpcTransport({ baseUrl: `https://localhost:${coordinator.port}`, nodeOptions: { ca: ca.cert, cert: cert.cert, key: cert.key } }));

beforeAll(async () => {
  pki = await TestPki.create();
  ca = await pki.ca("admin-ca");
  const server = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
  opsCert = await pki.leaf(ca, { cn: "operator", san: [`URI:${OPERATOR}`] });
  appCert = await pki.leaf(ca, { cn: "app", san: ["URI:spiffe://test/app"] });
  await svc.listenHttp();
  const logger = pino({ level: "info" }, new Writable({ write: (chunk, _e, done) => (logs.push(String(chunk)), done()) }));
  coordinator = await startTestCoordinator(
    await backend.freshUrl(),
    { security: { tlsCertFile: server.certFile, tlsKeyFile: server.keyFile, tlsCaFile: ca.certFile, mtls: "required", adminCallers: OPERATOR } },
    logger,
  );
  admin = clientAs(AdminService, opsCert);
  app = clientAs(CoordinatorService, appCert);
});
afterAll(async () => {
  await coordinator?.stop();
  await svc.close();
  await backend.cleanup();
  await pki.cleanup();
});

let counter = 0;
const gidOf = (name: string) => `${name}-${Date.now()}-${counter++}`;
const failure = (call: Promise<unknown>) => call.then(() => undefined, (e: unknown) => ConnectError.from(e));
const get = async (gid: string) => (await app.getTransaction({ gid })).transaction!;
const branchOf = (tx: Transaction, id: string, op: BranchOp) => tx.branches.find((b) => b.branchId === id && b.op === op)!;
const until = <T>(what: string, check: () => Promise<T | undefined | false>) => waitUntil(check, what, 30_000);

describe("AdminService", () => {
  it("refuses callers that are not operators", async () => {
    const refused = await failure(clientAs(AdminService, appCert).getConfig({}));
    expect(refused?.code).toBe(Code.PermissionDenied);
  });

  it("RetryTransaction makes a stalled transaction due now, resets its backoff and clears stalled, recorded on it", async () => {
    const gid = gidOf("retry");
    let up = false;
    svc.on("/retry-a", () => ({ status: up ? 200 : 503 }));
    // Retries an hour apart: only the operator's retry can bring the next attempt soon.
    const hour = durationFromMs(3_600_000);
    await app.submit({
      gid,
      mode: Mode.SAGA,
      steps: [{ action: svc.httpUrl("/retry-a"), compensate: svc.httpUrl("/retry-undo") }],
      options: { retry: { maxAttempts: 1, initialInterval: hour, maxInterval: hour } },
    });
    const stalled = await until("the transaction to stall", async () => ((await get(gid)).stalled ? get(gid) : undefined));
    expect(branchOf(stalled, "01", BranchOp.ACTION).attempts).toBe(1);
    up = true;
    const { transaction } = await admin.retryTransaction({ gid, reason: "service fixed" });
    expect(transaction?.stalled).toBe(false);
    expect(transaction?.adminActions).toMatchObject([{ kind: AdminActionKind.RETRY, identity: OPERATOR, reason: "service fixed" }]);
    const done = await until("the retried transaction to succeed", async () => ((await get(gid)).status === TransactionStatus.SUCCEEDED ? get(gid) : undefined));
    expect(svc.callsTo("/retry-a", gid)).toHaveLength(2);
    expect(branchOf(done, "01", BranchOp.ACTION).attempts).toBe(1); // counted again from the reset
    expect(logs.some((l) => l.includes('"admin action"') && l.includes(OPERATOR) && l.includes(gid))).toBe(true);
  });

  it("FailTransaction rolls a SAGA back (compensating what ran), requires a reason, and is seen by a watcher", async () => {
    const gid = gidOf("fail");
    svc.on("/fail-b", () => ({ status: 503 }));
    await app.submit({
      gid,
      mode: Mode.SAGA,
      steps: [
        { action: svc.httpUrl("/fail-a"), compensate: svc.httpUrl("/fail-a-undo") },
        { action: svc.httpUrl("/fail-b"), compensate: svc.httpUrl("/fail-b-undo") },
      ],
    });
    await until("the second action to be retried", async () => svc.callsTo("/fail-b", gid).length >= 2);
    expect((await failure(admin.failTransaction({ gid, reason: "" })))?.rawMessage).toMatch(/^reason: is required/);

    const abort = new AbortController();
    const seen: Transaction[] = [];
    const watching = (async () => {
      for await (const update of app.watchTransaction({ gid }, { signal: abort.signal })) seen.push(update.transaction!);
    })().catch(() => undefined);
    await until("the watch to start", async () => seen.length > 0);

    await admin.failTransaction({ gid, reason: "bank B is gone for good" });
    const done = await until("the rollback to finish", async () => ((await get(gid)).status === TransactionStatus.FAILED ? get(gid) : undefined));
    abort.abort();
    await watching;
    expect(done.failureReason).toBe("failed by an operator: bank B is gone for good");
    expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/01/compensate`]);
    // b's action was attempted, so its compensation ran too (a null compensation at the branch).
    expect(branchOf(done, "02", BranchOp.COMPENSATE).status).toBe(BranchStatus.SUCCEEDED);
    expect(done.adminActions).toMatchObject([{ kind: AdminActionKind.FAIL, identity: OPERATOR, reason: "bank B is gone for good" }]);
    expect(seen.some((t) => t.adminActions.length === 1)).toBe(true);
    // Failing it again changes nothing.
    expect((await admin.failTransaction({ gid, reason: "again" })).transaction?.adminActions).toHaveLength(1);
  });

  it("FailTransaction of a SAGA in the middle of a call compensates every action that ran or may have run", async () => {
    const gid = gidOf("fail-running");
    const held = gate();
    svc.on("/run-b", () => ({ status: 200, until: held.opened }));
    await app.submit({
      gid,
      mode: Mode.SAGA,
      steps: ["a", "b", "c"].map((n) => ({ action: svc.httpUrl(`/run-${n}`), compensate: svc.httpUrl(`/run-${n}-undo`) })),
    });
    // a succeeded (only in the running coordinator's memory yet), b is in flight.
    await until("the second action to be in flight", async () => svc.callsTo("/run-b", gid).length === 1);
    await admin.failTransaction({ gid, reason: "stop this transfer" });
    held.open();
    const done = await until("the rollback to finish", async () => ((await get(gid)).status === TransactionStatus.FAILED ? get(gid) : undefined));
    const effects = svc.effectsOf(gid);
    // Every action that took effect was compensated; nothing ran after its compensation.
    for (const id of ["01", "02", "03"]) {
      if (effects.includes(`${gid}/${id}/action`)) expect(effects, id).toContain(`${gid}/${id}/compensate`);
    }
    expect(effects).toContain(`${gid}/01/action`);
    expect(done.adminActions).toHaveLength(1);
  });

  it("FailTransaction ends an unsubmitted MSG at once and refuses a TCC whose confirm phase began", async () => {
    const msg = gidOf("fail-msg");
    await app.begin({ gid: msg, mode: Mode.MSG, steps: [{ action: svc.httpUrl("/msg-a") }], queryPrepared: svc.httpUrl("/msg-q"), options: { preparedTimeout: durationFromMs(3_600_000) } });
    expect((await admin.failTransaction({ gid: msg, reason: "the order was cancelled" })).transaction?.status).toBe(TransactionStatus.FAILED);
    expect(svc.callsTo("/msg-a", msg)).toHaveLength(0);

    const tcc = gidOf("fail-tcc");
    svc.on("/tcc-confirm", () => ({ status: 503 }));
    await app.begin({ gid: tcc, mode: Mode.TCC });
    await app.registerBranch({ gid: tcc, branchId: "b1", commit: svc.httpUrl("/tcc-confirm"), rollback: svc.httpUrl("/tcc-cancel") });
    await app.submit({ gid: tcc, mode: Mode.TCC });
    const refused = await failure(admin.failTransaction({ gid: tcc, reason: "no" }));
    expect(refused?.code).toBe(Code.FailedPrecondition);
    expect(refused?.rawMessage).toMatch(/SkipBranch/);
    // A confirm an operator completed by hand is skipped, and the TCC ends.
    const skipped = await admin.skipBranch({ gid: tcc, branchId: "b1", op: BranchOp.CONFIRM, reason: "confirmed in the ledger by hand" });
    expect(branchOf(skipped.transaction!, "b1", BranchOp.CONFIRM).status).toBe(BranchStatus.SKIPPED);
    const done = await until("the TCC to succeed", async () => ((await get(tcc)).status === TransactionStatus.SUCCEEDED ? get(tcc) : undefined));
    expect(done.adminActions).toMatchObject([{ kind: AdminActionKind.SKIP, branchId: "b1", op: BranchOp.CONFIRM, identity: OPERATOR }]);
    expect(svc.callsTo("/tcc-cancel", tcc)).toHaveLength(0);
  });

  it("SkipBranch lets a SAGA whose compensation can never succeed end, and checks what it is given", async () => {
    const gid = gidOf("skip");
    svc.on("/skip-a", () => ({ status: 409 }));
    svc.on("/skip-a-undo", () => ({ status: 500 }));
    await app.submit({ gid, mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/skip-a"), compensate: svc.httpUrl("/skip-a-undo") }] });
    // The refused action is compensated (it may have run), and the compensation keeps failing.
    await until("the compensation to be retried", async () => svc.callsTo("/skip-a-undo", gid).length >= 2);
    const errors = await Promise.all([
      failure(admin.skipBranch({ gid, branchId: "01", op: BranchOp.COMPENSATE, reason: "" })),
      failure(admin.skipBranch({ gid, branchId: "01", reason: "x" })),
      failure(admin.skipBranch({ gid, branchId: "09", op: BranchOp.COMPENSATE, reason: "x" })),
      failure(admin.skipBranch({ gid, branchId: "01", op: BranchOp.ACTION, reason: "x" })),
    ]);
    expect(errors.map((e) => [e?.code, e?.rawMessage.split(":")[0]])).toEqual([
      [Code.InvalidArgument, "reason"],
      [Code.InvalidArgument, "op"],
      [Code.InvalidArgument, "branch_id"],
      [Code.FailedPrecondition, "branch 01 action of \"" + gid + "\" is failed; only a pending operation can be skipped"],
    ]);
    await admin.skipBranch({ gid, branchId: "01", op: BranchOp.COMPENSATE, reason: "reversed by hand" });
    const done = await until("the saga to end", async () => ((await get(gid)).status === TransactionStatus.FAILED ? get(gid) : undefined));
    expect(branchOf(done, "01", BranchOp.COMPENSATE)).toMatchObject({ status: BranchStatus.SKIPPED, lastError: "skipped by an operator: reversed by hand" });
  });

  it("SetLogLevel changes the running level and answers the previous one; GetConfig shows the effective config", async () => {
    expect((await failure(admin.setLogLevel({ level: "loud" })))?.rawMessage).toMatch(/^level: must be one of trace, debug/);
    expect(await admin.setLogLevel({ level: "debug" })).toMatchObject({ previousLevel: "info" });
    const before = logs.length;
    await app.submit({ gid: gidOf("debug"), mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/dbg"), compensate: svc.httpUrl("/dbg-undo") }], wait: true });
    expect(logs.slice(before).some((l) => l.includes('"level":20'))).toBe(true);
    expect(await admin.setLogLevel({ level: "info" })).toMatchObject({ previousLevel: "debug" });
    const config = JSON.parse((await admin.getConfig({})).configJson) as { port: number; security: { mtls: string; adminCallers: string[] } };
    expect(config.port).toBe(0);
    expect(config.security).toMatchObject({ mtls: "required", adminCallers: [OPERATOR] });
  });
});
