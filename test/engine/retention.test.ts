import { Writable } from "node:stream";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { createRetention } from "../../server/engine/retention.js";
import { openStore, type DeletedRows } from "../../server/store/index.js";
import { branchRecord, createTx, txRecord } from "../store/fixtures.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { backends } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
let counter = 0;
const uniqueGid = (name: string) => `${name}-${Date.now()}-${counter++}`;

/** Log records of the coordinator, parsed, as it writes them. */
function recordingLogger() {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { records, logger: pino({ level: "debug" }, stream) };
}

const RETENTION_MS = 60_000;

for (const backend of backends()) {
  describe(`retention (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let client: Client<typeof CoordinatorService>;
    const svc = new TestBranchService();
    const log = recordingLogger();

    beforeAll(async () => {
      await svc.listenHttp();
      svc.on("/down", () => ({ status: 503 }));
      // Batches of two, every few tens of milliseconds: several batches and several runs.
      coordinator = await startTestCoordinator(
        await backend.freshUrl(),
        { retention: { finishedAfterMs: RETENTION_MS, intervalMs: 50, batchSize: 2, maxBatchesPerRun: 2 } },
        log.logger,
      );
      client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    });
    afterAll(async () => {
      await coordinator.stop();
      await svc.close();
      await backend.cleanup();
    });

    const submit = (gid: string, path: string, requestId = "") =>
      client.submit({ gid, mode: Mode.SAGA, steps: [{ action: svc.httpUrl(path), compensate: svc.httpUrl(`${path}-undo`), payload: json({ gid }) }], wait: path !== "/down", requestId });

    /** Makes a finished transaction look as if it had finished longer ago than the retention. */
    const age = async (gid: string) => {
      const [moved] = await coordinator.store.write([{ kind: "transaction", gid, expect: { statuses: ["succeeded", "failed"] }, changes: { finishedAt: Date.now() - 2 * RETENTION_MS } }]);
      expect(moved).toBe(true);
    };

    it("deletes finished transactions older than retention.finishedAfterMs with their request ids; unfinished and younger ones stay", async () => {
      const old = Array.from({ length: 5 }, () => uniqueGid("old"));
      for (const [i, gid] of old.entries()) {
        const { transaction } = await submit(gid, "/ok", `rid-${gid}-${i}`);
        expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      }
      const young = uniqueGid("young");
      expect((await submit(young, "/ok", `rid-${young}`)).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      // Retried for ever against a service that is down: never finished, never deleted.
      const unfinished = uniqueGid("unfinished");
      await submit(unfinished, "/down", `rid-${unfinished}`);
      await waitUntil(async () => svc.callsTo("/down", unfinished).length >= 2, "the unfinished saga to be retried");

      for (const gid of old) await age(gid);
      await waitUntil(
        async () => {
          for (const gid of old) if (await coordinator.store.getTransaction(gid)) return false;
          return true;
        },
        "the old transactions to be deleted",
      );

      for (const gid of old) {
        const error = await client.getTransaction({ gid }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
        expect(error?.code).toBe(Code.NotFound);
      }
      // The request id is forgotten with its transaction: reused, it is a new request, not a replay
      // (a replay would answer with the old gid, and another gid under a known id is refused).
      const reused = `rid-${old[0]}-0`;
      expect(await coordinator.store.getRequest("", reused)).toBeUndefined();
      const again = uniqueGid("again");
      expect((await submit(again, "/ok", reused)).transaction).toMatchObject({ gid: again, status: TransactionStatus.SUCCEEDED });

      expect((await client.getTransaction({ gid: young })).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(await coordinator.store.getRequest("", `rid-${young}`)).toMatchObject({ gid: young });
      expect((await client.getTransaction({ gid: unfinished })).transaction?.status).toBe(TransactionStatus.SUBMITTED);
      expect(await coordinator.store.getRequest("", `rid-${unfinished}`)).toMatchObject({ gid: unfinished });

      // Every deleted row is in the log, counted once: here, exactly the old transactions.
      const runs = log.records.filter((r) => r.msg === "retention deleted finished transactions");
      expect(runs.reduce((sum, r) => sum + Number(r.transactions), 0)).toBe(old.length);
      expect(runs.reduce((sum, r) => sum + Number(r.requests), 0)).toBe(old.length);
      expect(runs.reduce((sum, r) => sum + Number(r.branches), 0)).toBe(2 * old.length);
    });

    it("stops a run after maxBatchesPerRun batches and goes on in the next run; 0 keeps everything", async () => {
      const store = await openStore({ url: await backend.freshUrl(), poolSize: 4 });
      try {
        for (let i = 0; i < 5; i++) await createTx(store, txRecord(`r-${i}`, { status: "failed", createdAt: 1, finishedAt: 1000 + i }), [branchRecord(`r-${i}`, 1, "action")]);
        const settings = { finishedAfterMs: 0, intervalMs: 60_000, batchSize: 2, maxBatchesPerRun: 2 };
        const seen: DeletedRows[] = [];
        const retention = createRetention({ store, config: () => settings, logger: pino({ level: "silent" }), onDeleted: (rows) => seen.push(rows) });
        expect((await retention.runOnce()).transactions).toBe(0);
        expect(await store.getTransaction("r-0")).toBeDefined();
        settings.finishedAfterMs = RETENTION_MS;
        expect(await retention.runOnce()).toEqual({ transactions: 4, branches: 4, requests: 0, adminActions: 0 });
        expect(await store.getTransaction("r-4")).toBeDefined();
        expect(await retention.runOnce()).toEqual({ transactions: 1, branches: 1, requests: 0, adminActions: 0 });
        expect(await store.getTransaction("r-4")).toBeUndefined();
        expect(seen.map((rows) => rows.transactions)).toEqual([2, 2, 1]);
      } finally {
        await store.close();
      }
    });
  });
}
