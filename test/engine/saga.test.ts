import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { BranchOp, BranchStatus, Mode, TransactionOptionsSchema, TransactionStatus, type Transaction } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { freePort } from "../support/free-port.js";
import { backends } from "../support/stores.js";
import { gate, waitUntil } from "../support/wait-until.js";

type Options = Parameters<typeof create<typeof TransactionOptionsSchema>>[1];
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
let counter = 0;
const uniqueGid = (name: string) => `${name}-${Date.now()}-${counter++}`;

for (const backend of backends()) {
  describe(`SAGA end to end (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let client: Client<typeof CoordinatorService>;
    const svc = new TestBranchService();

    beforeAll(async () => {
      await svc.listenHttp();
      await svc.listenGrpc(["Debit", "DebitUndo", "Credit", "CreditUndo"]);
      coordinator = await startTestCoordinator(await backend.freshUrl(), { limits: { maxPayloadBytes: 1024 } });
      client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    });
    afterAll(async () => {
      await coordinator.stop();
      await svc.close();
      await backend.cleanup();
    });

    const step = (name: string, extra: { branchId?: string; after?: string[]; payload?: Uint8Array } = {}) => ({
      action: svc.httpUrl(`/${name}`),
      compensate: svc.httpUrl(`/${name}-undo`),
      payload: extra.payload ?? json({ step: name }),
      ...extra,
    });
    const submit = (gid: string, steps: ReturnType<typeof step>[], options: Options = {}, wait = true, timeoutMs = 15_000) =>
      client.submit({ gid, mode: Mode.SAGA, steps, options, wait }, { timeoutMs });
    const final = (gid: string) =>
      waitUntil(async () => {
        const { transaction } = await client.getTransaction({ gid });
        return transaction && [TransactionStatus.SUCCEEDED, TransactionStatus.FAILED].includes(transaction.status) ? transaction : undefined;
      }, `${gid} to finish`);
    const branch = (tx: Transaction | undefined, id: string, op: BranchOp) => tx?.branches.find((b) => b.branchId === id && b.op === op);

    it("runs every action in order and succeeds, with the accord headers and payload", async () => {
      const gid = uniqueGid("ok");
      const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
      const { transaction } = await submit(gid, [step("ok-a"), step("ok-b")], { traceparent });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(transaction?.finishedAt).toBeDefined();
      const calls = svc.calls.filter((c) => c.gid === gid);
      expect(calls.map((c) => `${c.name} ${c.branchId} ${c.op}`)).toEqual(["/ok-a 01 action", "/ok-b 02 action"]);
      expect(calls[0]).toMatchObject({ mode: "saga", traceparent, payload: '{"step":"ok-a"}' });
      expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/02/action`]);
      expect(branch(transaction, "02", BranchOp.ACTION)).toMatchObject({ status: BranchStatus.SUCCEEDED, attempts: 1 });
      expect(branch(transaction, "02", BranchOp.COMPENSATE)?.status).toBe(BranchStatus.PENDING);
    });

    it("calls gRPC branches with the payload bytes as the request message", async () => {
      const gid = uniqueGid("grpc");
      const steps = [
        { action: svc.grpcUrl("Debit"), compensate: svc.grpcUrl("DebitUndo"), payload: json({ amount: 5 }) },
        { action: svc.grpcUrl("Credit"), compensate: svc.grpcUrl("CreditUndo"), payload: json({ amount: 5 }) },
      ];
      svc.on("Credit", (_c, n) => (n === 0 ? { status: 503 } : { status: 200 }));
      const { transaction } = await client.submit({ gid, mode: Mode.SAGA, steps, wait: true }, { timeoutMs: 15_000 });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      const calls = svc.calls.filter((c) => c.gid === gid);
      expect(calls.map((c) => `${c.transport} ${c.name} ${c.op}`)).toEqual(["grpc Debit action", "grpc Credit action", "grpc Credit action"]);
      expect(calls[0]?.payload).toBe('{"amount":5}');
    });

    it("reads gRPC FAILED_PRECONDITION as ONGOING and ABORTED as FAILURE, compensating over gRPC", async () => {
      const gid = uniqueGid("grpcfail");
      svc.on("Credit", (call, n) => (call.gid !== gid ? { status: 200 } : n === 0 ? { status: 425 } : { status: 409, body: "account closed" }));
      const steps = [
        { action: svc.grpcUrl("Debit"), compensate: svc.grpcUrl("DebitUndo"), payload: json({ amount: 7 }) },
        { action: svc.grpcUrl("Credit"), compensate: svc.grpcUrl("CreditUndo"), payload: json({ amount: 7 }) },
      ];
      const { transaction } = await client.submit({ gid, mode: Mode.SAGA, steps, wait: true }, { timeoutMs: 15_000 });
      expect(transaction?.status).toBe(TransactionStatus.FAILED);
      expect(transaction?.failureReason).toMatch(/gRPC status 10: account closed/);
      const calls = svc.calls.filter((c) => c.gid === gid).map((c) => `${c.name} ${c.op}`);
      expect(calls).toEqual(["Debit action", "Credit action", "Credit action", "CreditUndo compensate", "DebitUndo compensate"]);
      expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/01/compensate`]);
    });

    it("compensates, in reverse order, every branch whose action ran when one refuses", async () => {
      const gid = uniqueGid("refuse");
      svc.on("/refuse-c", () => ({ status: 409, body: "insufficient funds" }));
      const { transaction } = await submit(gid, [step("refuse-a"), step("refuse-b"), step("refuse-c"), step("refuse-d")]);
      expect(transaction?.status).toBe(TransactionStatus.FAILED);
      expect(transaction?.failedBranchId).toBe("03");
      expect(transaction?.failureReason).toMatch(/409.*insufficient funds/);
      const compensations = svc.calls.filter((c) => c.gid === gid && c.op === "compensate").map((c) => c.branchId);
      expect(compensations).toEqual(["03", "02", "01"]);
      expect(svc.callsTo("/refuse-d", gid)).toHaveLength(0);
      expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/02/action`, `${gid}/02/compensate`, `${gid}/01/compensate`]);
      expect(branch(transaction, "03", BranchOp.ACTION)).toMatchObject({ status: BranchStatus.FAILED, lastError: expect.stringContaining("409") });
    });

    it("retries 5xx answers with backoff until the action succeeds", async () => {
      const gid = uniqueGid("flaky");
      svc.on("/flaky-a", (_c, n) => (n < 2 ? { status: 503, body: "busy" } : { status: 200 }));
      const { transaction } = await submit(gid, [step("flaky-a")]);
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(branch(transaction, "01", BranchOp.ACTION)?.attempts).toBe(3);
      const times = svc.callsTo("/flaky-a", gid).map((c) => c.at);
      expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(40); // second backoff ≥ half of 2 × 50ms
    });

    it("asks again at the ongoing interval after ONGOING (425)", async () => {
      const gid = uniqueGid("ongoing");
      svc.on("/ongoing-a", (_c, n) => (n < 2 ? { status: 425 } : { status: 200 }));
      const { transaction } = await submit(gid, [step("ongoing-a")], { retry: { ongoingInterval: durationFromMs(100) } });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      const times = svc.callsTo("/ongoing-a", gid).map((c) => c.at);
      expect(times).toHaveLength(3);
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(95);
    });

    it("treats a call past branch_timeout as an error and retries it", async () => {
      const gid = uniqueGid("slow");
      // The first call answers only once the retry has arrived, so it surely outlasts the branch
      // timeout; the timeout is generous for the retry, which answers at once.
      const retried = gate();
      svc.on("/slow-a", (call, n) => {
        if (call.gid === gid && n > 0) retried.open();
        return n === 0 ? { status: 200, until: retried.opened } : { status: 200 };
      });
      const { transaction } = await submit(gid, [step("slow-a")], { branchTimeout: durationFromMs(1000) });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(branch(transaction, "01", BranchOp.ACTION)?.attempts).toBe(2);
      expect(svc.callsTo("/slow-a", gid)).toHaveLength(2);
    });

    it("keeps retrying a refused connection until the service comes up", async () => {
      const gid = uniqueGid("down");
      const port = await freePort();
      const late = new TestBranchService();
      const url = (p: string) => `http://127.0.0.1:${port}${p}`;
      const { transaction: accepted } = await client.submit({
        gid,
        mode: Mode.SAGA,
        steps: [{ action: url("/late"), compensate: url("/late-undo"), payload: json({}) }],
      });
      expect(accepted?.status).toBe(TransactionStatus.SUBMITTED);
      await waitUntil(async () => (await client.getTransaction({ gid })).transaction?.lastError.includes("ECONNREFUSED"), "a refused attempt");
      await late.listenHttp(port);
      try {
        const done = await final(gid);
        expect(done.status).toBe(TransactionStatus.SUCCEEDED);
        expect(late.effectsOf(gid)).toEqual([`${gid}/01/action`]);
        expect(branch(done, "01", BranchOp.ACTION)?.attempts).toBeGreaterThan(1);
      } finally {
        await late.close();
      }
    });

    it("runs a concurrent saga in DAG order, independent branches in parallel", async () => {
      const gid = uniqueGid("dag");
      for (const name of ["dag-a", "dag-d"]) svc.on(`/${name}`, () => ({ status: 200, delayMs: 80 }));
      // b and c each answer only once both have arrived: they can both arrive only if the
      // coordinator has them in flight together (run one after the other, the gate times out).
      const arrived = new Set<string>();
      const bothInFlight = gate(10_000);
      for (const name of ["dag-b", "dag-c"]) {
        svc.on(`/${name}`, (call) => {
          if (call.gid === gid) arrived.add(name);
          if (arrived.size === 2) bothInFlight.open();
          return { status: 200, until: bothInFlight.opened, delayMs: 80 };
        });
      }
      const steps = [
        step("dag-a", { branchId: "a" }),
        step("dag-b", { branchId: "b", after: ["a"] }),
        step("dag-c", { branchId: "c", after: ["a"] }),
        step("dag-d", { branchId: "d", after: ["b", "c"] }),
      ];
      const { transaction } = await submit(gid, steps, { concurrent: true });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      const at = (id: string) => svc.calls.find((c) => c.gid === gid && c.branchId === id)!.at;
      expect(at("b") - at("a")).toBeGreaterThanOrEqual(75);
      expect(at("c") - at("a")).toBeGreaterThanOrEqual(75);
      expect(bothInFlight.isOpen()).toBe(true); // b and c were in flight together
      expect(at("d") - Math.max(at("b"), at("c"))).toBeGreaterThanOrEqual(75);
    });

    it("compensates a concurrent saga in reverse dependency order", async () => {
      const gid = uniqueGid("dagfail");
      svc.on("/dagfail-d", () => ({ status: 409 }));
      const steps = [
        step("dagfail-a", { branchId: "a" }),
        step("dagfail-b", { branchId: "b", after: ["a"] }),
        step("dagfail-d", { branchId: "d", after: ["b"] }),
        step("dagfail-e", { branchId: "e", after: ["d"] }),
      ];
      const { transaction } = await submit(gid, steps, { concurrent: true });
      expect(transaction?.status).toBe(TransactionStatus.FAILED);
      expect(svc.calls.filter((c) => c.gid === gid && c.op === "compensate").map((c) => c.branchId)).toEqual(["d", "b", "a"]);
    });

    it("aborts a saga still running actions at timeout_to_fail", async () => {
      const gid = uniqueGid("deadline");
      svc.on("/deadline-b", () => ({ status: 425 }));
      // The deadline leaves ample time for a to succeed and b to be asked, however slow the machine.
      const { transaction } = await submit(gid, [step("deadline-a"), step("deadline-b")], { timeoutToFail: durationFromMs(1500) });
      expect(transaction?.status).toBe(TransactionStatus.FAILED);
      expect(transaction?.failureReason).toMatch(/timeout_to_fail/);
      // b may have taken effect (ONGOING), so both are compensated, b first.
      expect(svc.calls.filter((c) => c.gid === gid && c.op === "compensate").map((c) => c.branchId)).toEqual(["02", "01"]);
      expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/01/compensate`]);
    });

    it("treats a repeated Submit with the same content as a no-op and different content as ALREADY_EXISTS", async () => {
      const gid = uniqueGid("dup");
      const steps = [step("dup-a")];
      const first = await submit(gid, steps);
      const again = await submit(gid, steps);
      expect(again.transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(again.transaction?.createdAt).toEqual(first.transaction?.createdAt);
      expect(svc.callsTo("/dup-a", gid)).toHaveLength(1);
      const conflict = await submit(gid, [step("dup-b")]).catch((e: unknown) => e);
      expect(conflict).toBeInstanceOf(ConnectError);
      expect((conflict as ConnectError).code).toBe(Code.AlreadyExists);
      expect(svc.callsTo("/dup-b", gid)).toHaveLength(0);
    });

    it("returns the current status, not an error, when the wait outlasts the deadline", async () => {
      const gid = uniqueGid("waiting");
      svc.on("/waiting-a", () => ({ status: 425 }));
      // A deadline long enough that the coordinator's margin (10 %, at most 200 ms) to answer
      // before it is not eaten by a busy machine.
      const started = Date.now();
      const { transaction } = await submit(gid, [step("waiting-a")], {}, true, 2000);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(transaction?.status).toBe(TransactionStatus.SUBMITTED);
      svc.on("/waiting-a", () => ({ status: 200 }));
      expect((await final(gid)).status).toBe(TransactionStatus.SUCCEEDED);
    });

    it("marks a transaction stalled past max_attempts, keeps retrying, and clears it on success", async () => {
      const gid = uniqueGid("stall");
      let healthy = false;
      svc.on("/stall-a", () => (healthy ? { status: 200 } : { status: 500, body: "db down" }));
      await submit(gid, [step("stall-a")], { retry: { maxAttempts: 2, initialInterval: durationFromMs(20), maxInterval: durationFromMs(60) } }, false);
      const stalled = await waitUntil(async () => {
        const { transaction } = await client.getTransaction({ gid });
        return transaction?.stalled ? transaction : undefined;
      }, "stalled");
      expect(stalled.status).toBe(TransactionStatus.SUBMITTED);
      expect(stalled.lastError).toMatch(/HTTP 500: db down/);
      const before = svc.callsTo("/stall-a", gid).length;
      await waitUntil(async () => svc.callsTo("/stall-a", gid).length > before + 1, "retries after stalling");
      const listed = await client.listTransactions({ stalledOnly: true });
      expect(listed.transactions.map((t) => t.gid)).toContain(gid);
      healthy = true;
      const done = await final(gid);
      expect(done).toMatchObject({ status: TransactionStatus.SUCCEEDED, stalled: false });
    });

    it("marks a transaction stalled once it has run longer than retry.max_elapsed", async () => {
      const gid = uniqueGid("elapsed");
      svc.on("/elapsed-a", () => ({ status: 425 }));
      // max_elapsed leaves ample time to read the transaction before it, however slow the machine.
      await submit(gid, [step("elapsed-a")], { retry: { maxElapsed: durationFromMs(1500), ongoingInterval: durationFromMs(50) } }, false);
      const early = (await client.getTransaction({ gid })).transaction;
      expect(early?.stalled).toBe(false);
      const stalled = await waitUntil(async () => {
        const { transaction } = await client.getTransaction({ gid });
        return transaction?.stalled ? transaction : undefined;
      }, "stalled by elapsed time");
      expect(stalled.status).toBe(TransactionStatus.SUBMITTED);
      expect(Date.now() - timestampMs(stalled.createdAt!)).toBeGreaterThanOrEqual(1500);
      svc.on("/elapsed-a", () => ({ status: 200 }));
      expect(await final(gid)).toMatchObject({ status: TransactionStatus.SUCCEEDED, stalled: false });
    });

    describe("rejects invalid input with INVALID_ARGUMENT naming the field, writing nothing", () => {
      const cases: [string, () => Parameters<typeof client.submit>[0], string][] = [
        ["a bad URL scheme", () => ({ steps: [{ ...step("x"), action: "ftp://127.0.0.1/x" }] }), "steps[0].action"],
        ["a target that is not a URL", () => ({ steps: [{ ...step("x"), compensate: "not a url" }] }), "steps[0].compensate"],
        ["a gRPC target without a method", () => ({ steps: [{ ...step("x"), action: "grpc://127.0.0.1:1/" }] }), "steps[0].action"],
        ["a missing compensate", () => ({ steps: [{ ...step("x"), compensate: "" }] }), "steps[0].compensate"],
        ["an empty branch list", () => ({ steps: [] }), "steps"],
        ["a payload over the limit", () => ({ steps: [step("x", { payload: new Uint8Array(1025) })] }), "steps[0].payload"],
        ["a duplicate branch id", () => ({ steps: [step("x", { branchId: "b" }), step("y", { branchId: "b" })] }), "steps[1].branch_id"],
        ["a bad branch id", () => ({ steps: [step("x", { branchId: "a/b" })] }), "steps[0].branch_id"],
        ["an unknown dependency", () => ({ steps: [step("x", { after: ["zz"] })], options: { concurrent: true } }), "steps[0].after[0]"],
        ["after without concurrent", () => ({ steps: [step("x", { branchId: "a" }), step("y", { after: ["a"] })] }), "steps[1].after"],
        [
          "a cycle",
          () => ({
            steps: [step("x", { branchId: "a", after: ["c"] }), step("y", { branchId: "b", after: ["a"] }), step("z", { branchId: "c", after: ["b"] })],
            options: { concurrent: true },
          }),
          "is on a dependency cycle",
        ],
        ["a bad traceparent", () => ({ steps: [step("x")], options: { traceparent: "nope" } }), "options.traceparent"],
        ["a negative timeout", () => ({ steps: [step("x")], options: { branchTimeout: { seconds: -1n } } }), "options.branch_timeout"],
        ["a bad multiplier", () => ({ steps: [step("x")], options: { retry: { multiplier: 0.5 } } }), "options.retry.multiplier"],
        ["no mode", () => ({ mode: Mode.UNSPECIFIED, steps: [step("x")] }), "mode"],
        ["a gid with SQL metacharacters", () => ({ gid: "x'; DELETE FROM transactions;--", steps: [step("x")] }), "gid"],
        ["a gid over 128 characters", () => ({ gid: "g".repeat(129), steps: [step("x")] }), "gid"],
      ];
      it.each(cases)("%s", async (_name, make, field) => {
        const gid = uniqueGid("invalid");
        const request = { gid, mode: Mode.SAGA, ...make() };
        const error = await client.submit(request).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.InvalidArgument);
        expect((error as ConnectError).rawMessage).toContain(field);
        if (request.gid === gid) await expect(client.getTransaction({ gid })).rejects.toMatchObject({ code: Code.NotFound });
      });
    });
  });
}
