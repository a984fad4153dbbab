import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { BranchOp, BranchStatus, Mode, TransactionStatus, type Transaction } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { backends } from "../support/stores.js";
import { gate, waitUntil } from "../support/wait-until.js";

let counter = 0;
const uniqueGid = (name: string) => `${name}-${Date.now()}-${counter++}`;
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const codeOf = (e: unknown) => (e instanceof ConnectError ? e.code : undefined);
/** The ConnectError a call fails with; fails the test if the call succeeds. */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const result = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(result instanceof ConnectError)) throw new Error(`expected a ConnectError, got ${String(result)}`);
  return result;
}

for (const backend of backends()) {
  describe(`TCC, XA and MSG (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let client: Client<typeof CoordinatorService>;
    const svc = new TestBranchService();

    let coordinatorStoreUrl = "";
    beforeAll(async () => {
      await svc.listenHttp();
      coordinatorStoreUrl = await backend.freshUrl();
      coordinator = await startTestCoordinator(coordinatorStoreUrl);
      client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    });
    afterAll(async () => {
      await coordinator.stop();
      await svc.close();
      await backend.cleanup();
    });

    const final = (gid: string) =>
      waitUntil(async () => {
        const { transaction } = await client.getTransaction({ gid });
        return transaction && [TransactionStatus.SUCCEEDED, TransactionStatus.FAILED].includes(transaction.status) ? transaction : undefined;
      }, `${gid} to finish`);
    const opsCalled = (gid: string) => svc.calls.filter((c) => c.gid === gid).map((c) => `${c.branchId}:${c.op}`);
    const register = (gid: string, branchId: string, name: string) =>
      client.registerBranch({ gid, branchId, commit: svc.httpUrl(`/${name}-confirm`), rollback: svc.httpUrl(`/${name}-cancel`), payload: json({ branchId }) });

    describe("TCC", () => {
      it("confirms every registered branch on Submit", async () => {
        const gid = uniqueGid("tcc-ok");
        const begun = await client.begin({ gid, mode: Mode.TCC });
        expect(begun.transaction?.status).toBe(TransactionStatus.PREPARED);
        await register(gid, "b1", "tcc-ok");
        const registered = await register(gid, "b2", "tcc-ok");
        expect(registered.transaction?.branches.map((b) => `${b.branchId}:${BranchOp[b.op]}`)).toEqual(["b1:CONFIRM", "b1:CANCEL", "b2:CONFIRM", "b2:CANCEL"]);
        const { transaction } = await client.submit({ gid, mode: Mode.TCC, wait: true }, { timeoutMs: 10_000 });
        expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
        expect(opsCalled(gid).sort()).toEqual(["b1:confirm", "b2:confirm"]);
        expect(svc.calls.find((c) => c.gid === gid)?.mode).toBe("tcc");
      });

      it("cancels every branch on Abort, recording the reason", async () => {
        const gid = uniqueGid("tcc-abort");
        await client.begin({ gid, mode: Mode.TCC });
        await register(gid, "b1", "tcc-abort");
        await register(gid, "b2", "tcc-abort");
        const { transaction } = await client.abort({ gid, reason: "try of b2 failed", wait: true }, { timeoutMs: 10_000 });
        expect(transaction).toMatchObject({ status: TransactionStatus.FAILED, failureReason: "try of b2 failed" });
        expect(opsCalled(gid).sort()).toEqual(["b1:cancel", "b2:cancel"]);
        await expect(client.submit({ gid, mode: Mode.TCC })).rejects.toSatisfy((e) => codeOf(e) === Code.FailedPrecondition);
      });

      it("aborts a PREPARED transaction older than its prepared_timeout", async () => {
        const gid = uniqueGid("tcc-timeout");
        // Long enough for the registration to land first, however slow the machine.
        await client.begin({ gid, mode: Mode.TCC, options: { preparedTimeout: durationFromMs(1500) } });
        await register(gid, "b1", "tcc-timeout");
        const done = await final(gid);
        expect(done.status).toBe(TransactionStatus.FAILED);
        expect(done.failureReason).toMatch(/prepared_timeout of 1500ms/);
        expect(opsCalled(gid)).toEqual(["b1:cancel"]);
      });

      it("retries a confirm that answers FAILURE until it succeeds (never final)", async () => {
        const gid = uniqueGid("tcc-retry");
        svc.on("/tcc-retry-confirm", (_c, n) => (n < 2 ? { status: 409 } : { status: 200 }));
        await client.begin({ gid, mode: Mode.TCC });
        await register(gid, "b1", "tcc-retry");
        const { transaction } = await client.submit({ gid, mode: Mode.TCC, wait: true }, { timeoutMs: 10_000 });
        expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
        expect(opsCalled(gid)).toEqual(["b1:confirm", "b1:confirm", "b1:confirm"]);
      });

      it("guards registration and status changes", async () => {
        const gid = uniqueGid("tcc-guard");
        await client.begin({ gid, mode: Mode.TCC });
        await register(gid, "b1", "tcc-guard");
        await register(gid, "b1", "tcc-guard"); // the same registration again is a no-op
        await Promise.all(Array.from({ length: 5 }, () => register(gid, "b9", "tcc-guard"))); // also when concurrent
        expect((await client.getTransaction({ gid })).transaction?.branches.filter((b) => b.branchId === "b9")).toHaveLength(2);
        await expect(client.registerBranch({ gid, branchId: "b1", commit: svc.httpUrl("/x"), rollback: svc.httpUrl("/y") })).rejects.toSatisfy(
          (e) => codeOf(e) === Code.AlreadyExists,
        );
        await expect(client.registerBranch({ gid, branchId: "b2", commit: "ftp://x/y", rollback: svc.httpUrl("/y") })).rejects.toSatisfy(
          (e) => codeOf(e) === Code.InvalidArgument && (e as ConnectError).rawMessage.startsWith("commit:"),
        );
        await expect(client.submit({ gid, mode: Mode.MSG })).rejects.toSatisfy((e) => codeOf(e) === Code.InvalidArgument);
        await client.submit({ gid, mode: Mode.TCC, wait: true });
        const again = await client.submit({ gid, mode: Mode.TCC });
        expect(again.transaction?.status).toBe(TransactionStatus.SUCCEEDED);
        await expect(register(gid, "b3", "tcc-guard")).rejects.toSatisfy((e) => codeOf(e) === Code.FailedPrecondition);
        await expect(client.abort({ gid })).rejects.toSatisfy((e) => codeOf(e) === Code.FailedPrecondition);
        await expect(client.registerBranch({ gid: "no-such", branchId: "b", commit: svc.httpUrl("/x"), rollback: svc.httpUrl("/y") })).rejects.toSatisfy(
          (e) => codeOf(e) === Code.NotFound,
        );
        await expect(client.begin({ gid: uniqueGid("saga"), mode: Mode.SAGA })).rejects.toSatisfy((e) => codeOf(e) === Code.InvalidArgument);
      });
    });

    describe("XA", () => {
      it("commits on Submit and rolls back on Abort", async () => {
        const ok = uniqueGid("xa-ok");
        await client.begin({ gid: ok, mode: Mode.XA });
        await register(ok, "db1", "xa");
        expect((await client.submit({ gid: ok, mode: Mode.XA, wait: true })).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
        expect(opsCalled(ok)).toEqual(["db1:commit"]);
        const no = uniqueGid("xa-no");
        await client.begin({ gid: no, mode: Mode.XA });
        await register(no, "db1", "xa");
        expect((await client.abort({ gid: no, wait: true })).transaction?.status).toBe(TransactionStatus.FAILED);
        expect(opsCalled(no)).toEqual(["db1:rollback"]);
      });
    });

    describe("MSG", () => {
      const steps = (name: string) => [
        { action: svc.httpUrl(`/${name}-1`), payload: json({ n: 1 }) },
        { action: svc.httpUrl(`/${name}-2`), payload: json({ n: 2 }) },
      ];

      it("runs the branches in order after Submit, retrying a refusal until it succeeds", async () => {
        const gid = uniqueGid("msg-ok");
        svc.on("/msg-ok-2", (_c, n) => (n === 0 ? { status: 409 } : { status: 200 }));
        await client.begin({ gid, mode: Mode.MSG, steps: steps("msg-ok"), queryPrepared: svc.httpUrl("/msg-ok-query") });
        expect(opsCalled(gid)).toEqual([]);
        const { transaction } = await client.submit({ gid, mode: Mode.MSG, wait: true }, { timeoutMs: 10_000 });
        expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
        expect(opsCalled(gid)).toEqual(["01:action", "02:action", "02:action"]);
        expect(svc.callsTo("/msg-ok-query", gid)).toHaveLength(0);
      });

      it("asks query_prepared when Submit never comes: SUCCESS runs the branches", async () => {
        const gid = uniqueGid("msg-check");
        svc.on("/msg-check-query", (_c, n) => (n === 0 ? { status: 425 } : { status: 200 }));
        await client.begin({
          gid,
          mode: Mode.MSG,
          steps: steps("msg-check"),
          queryPrepared: svc.httpUrl("/msg-check-query"),
          options: { preparedTimeout: durationFromMs(200), retry: { ongoingInterval: durationFromMs(50) } },
        });
        const done = await final(gid);
        expect(done.status).toBe(TransactionStatus.SUCCEEDED);
        expect(svc.callsTo("/msg-check-query", gid).map((c) => c.op)).toEqual(["query", "query"]);
        expect(opsCalled(gid).filter((o) => o.endsWith("action"))).toEqual(["01:action", "02:action"]);
      });

      it("ends FAILED without running a branch when query_prepared answers FAILURE", async () => {
        const gid = uniqueGid("msg-rolledback");
        svc.on("/msg-rolledback-query", () => ({ status: 409, body: "rolled back" }));
        await client.begin({ gid, mode: Mode.MSG, steps: steps("msg-rolledback"), queryPrepared: svc.httpUrl("/msg-rolledback-query"), options: { preparedTimeout: durationFromMs(200) } });
        const done = await final(gid);
        expect(done.status).toBe(TransactionStatus.FAILED);
        expect(done.failureReason).toMatch(/query_prepared answered FAILURE: HTTP 409: rolled back/);
        expect(opsCalled(gid)).toEqual(["00:query"]);
      });

      it("fails an unsubmitted MSG on Abort at once", async () => {
        const gid = uniqueGid("msg-abort");
        await client.begin({ gid, mode: Mode.MSG, steps: steps("msg-abort"), queryPrepared: svc.httpUrl("/q") });
        const { transaction } = await client.abort({ gid });
        expect(transaction?.status).toBe(TransactionStatus.FAILED);
        expect(opsCalled(gid)).toEqual([]);
      });

      it("rejects compensations, a missing query_prepared and timeout_to_fail, naming the field", async () => {
        const attempt = (extra: object) => failure(client.begin({ gid: uniqueGid("msg-bad"), mode: Mode.MSG, steps: steps("x"), queryPrepared: svc.httpUrl("/q"), ...extra }));
        expect((await attempt({ steps: [{ action: svc.httpUrl("/a"), compensate: svc.httpUrl("/b") }] })).rawMessage).toMatch(/^steps\[0\]\.compensate/);
        expect((await attempt({ queryPrepared: "" })).rawMessage).toMatch(/^query_prepared: is required/);
        expect((await attempt({ steps: [] })).rawMessage).toMatch(/^steps:/);
        expect((await attempt({ options: { timeoutToFail: durationFromMs(5) } })).rawMessage).toMatch(/^options.timeout_to_fail/);
      });
    });

    describe("request_id", () => {
      it("replays a Submit with the same request_id without a second effect", async () => {
        const gid = uniqueGid("rid");
        const request = { gid, mode: Mode.SAGA, requestId: `req-${gid}`, wait: true, steps: [{ action: svc.httpUrl("/rid-a"), compensate: svc.httpUrl("/rid-u") }] };
        const first = await client.submit(request);
        const second = await client.submit(request);
        expect(second.transaction?.status).toBe(TransactionStatus.SUCCEEDED);
        expect(second.transaction?.createdAt).toEqual(first.transaction?.createdAt);
        expect(svc.callsTo("/rid-a", gid)).toHaveLength(1);
        // The id belongs to that request: another gid with it is refused, naming the field.
        const other = await failure(client.submit({ ...request, gid: uniqueGid("rid-other") }));
        expect(other.code).toBe(Code.InvalidArgument);
        expect(other.rawMessage).toMatch(/^request_id: .* was already used for a different request/);
        // Same gid and id, other steps: a different request, not a replay (AIP-155).
        const changed = await failure(client.submit({ ...request, steps: [{ action: svc.httpUrl("/rid-b"), compensate: svc.httpUrl("/rid-u") }] }));
        expect(changed.code).toBe(Code.InvalidArgument);
        expect(changed.rawMessage).toMatch(/^request_id: /);
        expect(svc.callsTo("/rid-b", gid)).toHaveLength(0);
        // How the caller wants the answer is not part of the request.
        expect((await client.submit({ ...request, wait: false })).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      });

      it("refuses a RegisterBranch of another branch under a known request_id, and stores nothing for it", async () => {
        const gid = uniqueGid("rid-reg");
        await client.begin({ gid, mode: Mode.TCC });
        const b1 = { gid, branchId: "b1", commit: svc.httpUrl("/rid-c"), rollback: svc.httpUrl("/rid-r"), requestId: `r-${gid}` };
        await client.registerBranch(b1);
        const b2 = await failure(client.registerBranch({ ...b1, branchId: "b2" }));
        expect(b2.code).toBe(Code.InvalidArgument);
        expect(b2.rawMessage).toMatch(/^request_id: /);
        const tx = (await client.getTransaction({ gid })).transaction!;
        expect([...new Set(tx.branches.map((b) => b.branchId))]).toEqual(["b1"]);
      });

      it("replays Abort and RegisterBranch", async () => {
        const gid = uniqueGid("rid-tcc");
        await client.begin({ gid, mode: Mode.TCC, requestId: `b-${gid}` });
        await client.begin({ gid, mode: Mode.TCC, requestId: `b-${gid}` });
        const reg = { gid, branchId: "b1", commit: svc.httpUrl("/rid-c"), rollback: svc.httpUrl("/rid-r"), requestId: `r-${gid}` };
        await client.registerBranch(reg);
        await client.registerBranch(reg);
        await client.abort({ gid, requestId: `a-${gid}`, wait: true });
        const replay = await client.abort({ gid, requestId: `a-${gid}` });
        expect(replay.transaction?.status).toBe(TransactionStatus.FAILED);
        expect(opsCalled(gid)).toEqual(["b1:cancel"]);
      });
    });

    describe("request_id across a restart", () => {
      it("is remembered by the store, so a retry after a restart has no second effect", async () => {
        const url = await backend.freshUrl();
        const gid = uniqueGid("rid-restart");
        const request = { gid, mode: Mode.SAGA, requestId: `r-${gid}`, wait: true, steps: [{ action: svc.httpUrl("/rr-a"), compensate: svc.httpUrl("/rr-u") }] };
        const first = await startTestCoordinator(url);
        await createClient(CoordinatorService, createGrpcTransport({ baseUrl: first.url })).submit(request);
        await first.stop();
        const second = await startTestCoordinator(url);
        try {
          const replay = await createClient(CoordinatorService, createGrpcTransport({ baseUrl: second.url })).submit(request);
          expect(replay.transaction?.status).toBe(TransactionStatus.SUCCEEDED);
          expect(svc.callsTo("/rr-a", gid)).toHaveLength(1);
        } finally {
          await second.stop();
        }
      });
    });

    describe("WatchTransaction", () => {
      it("sends the current state, then every transition in order, and ends", async () => {
        const gid = uniqueGid("watch");
        // b answers only once the watch has its first state, so the watch sees every transition.
        const watching = gate();
        svc.on("/watch-b", () => ({ status: 409, until: watching.opened }));
        await client.submit({
          gid,
          mode: Mode.SAGA,
          steps: [
            { action: svc.httpUrl("/watch-a"), compensate: svc.httpUrl("/watch-a-undo") },
            { action: svc.httpUrl("/watch-b"), compensate: svc.httpUrl("/watch-b-undo") },
          ],
        });
        const seen: Transaction[] = [];
        for await (const update of client.watchTransaction({ gid }, { timeoutMs: 30_000 })) {
          seen.push(update.transaction!);
          watching.open();
        }
        const statuses = seen.map((t) => t.status).filter((s, i, all) => s !== all[i - 1]);
        expect(statuses).toEqual([TransactionStatus.SUBMITTED, TransactionStatus.ABORTING, TransactionStatus.FAILED]);
        expect(seen.at(-1)?.failedBranchId).toBe("02");
      });

      it("streams each branch result as it is known, while the transaction is still running", async () => {
        const gid = uniqueGid("watch-steps");
        // Each action answers only once the watch has shown the one before it succeed.
        const gates = [gate(), gate(), gate()];
        ["a", "b", "c"].forEach((name, i) => svc.on(`/steps-${name}`, () => ({ status: 200, until: gates[i]!.opened })));
        await client.submit({
          gid,
          mode: Mode.SAGA,
          steps: ["a", "b", "c"].map((name) => ({ action: svc.httpUrl(`/steps-${name}`), compensate: svc.httpUrl(`/steps-${name}-undo`) })),
          // No timeout (and so no write of progress) while a call is held: only the stream can open the next gate.
          options: { branchTimeout: { seconds: 600n } },
        });
        const succeededActions = (t: Transaction) => t.branches.filter((b) => b.op === BranchOp.ACTION && b.status === BranchStatus.SUCCEEDED).map((b) => b.branchId);
        const progress: { status: TransactionStatus; done: string[] }[] = [];
        for await (const update of client.watchTransaction({ gid }, { timeoutMs: 30_000 })) {
          const done = succeededActions(update.transaction!);
          progress.push({ status: update.transaction!.status, done });
          gates[done.length]?.open(); // the watch saw `done.length` actions succeed: let the next answer
        }
        expect(gates.every((g) => g.isOpen())).toBe(true);
        // Every action's success was streamed while the SAGA was still SUBMITTED, one at a time.
        const running = progress.filter((p) => p.status === TransactionStatus.SUBMITTED).map((p) => p.done);
        expect(running.slice(0, 3)).toEqual([[], ["01"], ["01", "02"]]);
        expect(progress.at(-1)).toEqual({ status: TransactionStatus.SUCCEEDED, done: ["01", "02", "03"] });
      });

      // Several coordinators share a MySQL database; SQLite is one coordinator per file.
      it.runIf(backend.name === "mysql")("follows a transaction run by another coordinator on the same database", async () => {
        const other = await startTestCoordinator(coordinatorStoreUrl);
        try {
          const gid = uniqueGid("watch-other");
          // The branch answers only once the watch has its first state.
          const watching = gate();
          svc.on("/watch-other", () => ({ status: 200, until: watching.opened }));
          await createClient(CoordinatorService, createGrpcTransport({ baseUrl: other.url })).submit({
            gid,
            mode: Mode.SAGA,
            steps: [{ action: svc.httpUrl("/watch-other"), compensate: svc.httpUrl("/watch-other-undo") }],
          });
          const statuses: TransactionStatus[] = [];
          for await (const update of client.watchTransaction({ gid }, { timeoutMs: 30_000 })) {
            statuses.push(update.transaction!.status);
            watching.open();
          }
          expect(statuses.at(0)).toBe(TransactionStatus.SUBMITTED);
          expect(statuses.at(-1)).toBe(TransactionStatus.SUCCEEDED);
        } finally {
          await other.stop();
        }
      });

      it("answers NOT_FOUND for an unknown gid", async () => {
        const stream = client.watchTransaction({ gid: "never-was" });
        await expect((async () => { for await (const _ of stream) void _; })()).rejects.toSatisfy((e) => codeOf(e) === Code.NotFound);
      });
    });
  });
}
