import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { TestBranchService } from "../support/branch-service.js";
import { startCoordinatorProcess } from "../support/coordinator-process.js";
import { backends } from "../support/stores.js";
import { gate, waitUntil } from "../support/wait-until.js";

const SAGAS = 6;

for (const backend of backends()) {
  describe(`a coordinator killed with SIGKILL mid-saga (${backend.name})`, () => {
    const svc = new TestBranchService();
    beforeAll(() => svc.listenHttp());
    afterAll(async () => {
      await svc.close();
      await backend.cleanup();
    });

    it("finishes every saga after restart, with no branch effect applied twice", { timeout: 180_000 }, async () => {
      const store = await backend.freshUrl();
      const gids = Array.from({ length: SAGAS }, (_, i) => `crash-${backend.name}-${Date.now()}-${i}`);
      const refuses = (gid: string) => gids.indexOf(gid) % 3 === 0;
      // b's first call of each saga is held until the coordinator is dead, so every saga is
      // mid-flight when it dies, however long they take to get there.
      const killed = gate();
      svc.on("/b", (_call, n) => (n === 0 ? { status: 200, until: killed.opened } : { status: 200 }));
      svc.on("/c", (call) => ({ status: refuses(call.gid) ? 409 : 200 }));

      const first = await startCoordinatorProcess(store);
      const steps = ["a", "b", "c"].map((name) => ({
        action: svc.httpUrl(`/${name}`),
        compensate: svc.httpUrl(`/${name}-undo`),
        payload: new TextEncoder().encode(`{"op":"${name}"}`),
      }));
      for (const gid of gids) {
        const { transaction } = await first.client.submit({ gid, mode: Mode.SAGA, steps });
        expect(transaction?.status).toBe(TransactionStatus.SUBMITTED);
      }
      await waitUntil(async () => gids.every((gid) => svc.callsTo("/b", gid).length > 0), "every saga to reach b", 60_000);
      first.child.kill("SIGKILL");
      expect(await first.exited).toBe(null);
      killed.open(); // the held calls now answer a coordinator that is gone

      const second = await startCoordinatorProcess(store);
      try {
        const finals = await waitUntil(async () => {
          const all = await Promise.all(gids.map(async (gid) => (await second.client.getTransaction({ gid })).transaction));
          return all.every((t) => t && (t.status === TransactionStatus.SUCCEEDED || t.status === TransactionStatus.FAILED)) ? all : undefined;
        }, "every saga to finish after the restart", 60_000);

        for (const [i, tx] of finals.entries()) {
          const gid = gids[i]!;
          if (refuses(gid)) {
            expect(tx?.status).toBe(TransactionStatus.FAILED);
            expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/02/action`, `${gid}/02/compensate`, `${gid}/01/compensate`]);
          } else {
            expect(tx?.status).toBe(TransactionStatus.SUCCEEDED);
            expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/02/action`, `${gid}/03/action`]);
          }
          // The call in flight at the kill was made again after the restart: at-least-once calls,
          // exactly-once effects.
          expect(svc.callsTo("/b", gid).length).toBeGreaterThanOrEqual(2);
          expect(new Set(svc.effectsOf(gid)).size).toBe(svc.effectsOf(gid).length);
        }
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    });

    it("after a crash between prepare and submit, back-checks an MSG and times out a TCC", { timeout: 180_000 }, async () => {
      const store = await backend.freshUrl();
      const msgGid = `crash-msg-${backend.name}-${Date.now()}`;
      const tccGid = `crash-tcc-${backend.name}-${Date.now()}`;
      svc.on("/committed", () => ({ status: 200 }));
      const first = await startCoordinatorProcess(store);
      await first.client.begin({
        gid: msgGid,
        mode: Mode.MSG,
        queryPrepared: svc.httpUrl("/committed"),
        steps: [{ action: svc.httpUrl("/msg-branch") }],
        options: { preparedTimeout: { seconds: 3n } },
      });
      await first.client.begin({ gid: tccGid, mode: Mode.TCC, options: { preparedTimeout: { seconds: 3n } } });
      await first.client.registerBranch({ gid: tccGid, branchId: "b1", commit: svc.httpUrl("/tcc-confirm"), rollback: svc.httpUrl("/tcc-cancel") });
      first.child.kill("SIGKILL");
      await first.exited;
      // The prepared_timeout (3 s) is far longer than the calls above take, so the crash came first.
      expect(svc.calls.filter((c) => c.gid === msgGid || c.gid === tccGid)).toEqual([]);

      const second = await startCoordinatorProcess(store);
      try {
        const finalOf = (gid: string) =>
          waitUntil(async () => {
            const { transaction } = await second.client.getTransaction({ gid });
            return transaction && (transaction.status === TransactionStatus.SUCCEEDED || transaction.status === TransactionStatus.FAILED) ? transaction : undefined;
          }, `${gid} to finish`, 60_000);
        expect((await finalOf(msgGid)).status).toBe(TransactionStatus.SUCCEEDED);
        expect(svc.callsTo("/committed", msgGid).map((c) => c.op)).toContain("query");
        expect(svc.effectsOf(msgGid).filter((e) => e.endsWith("/action"))).toEqual([`${msgGid}/01/action`]);
        const tcc = await finalOf(tccGid);
        expect(tcc.status).toBe(TransactionStatus.FAILED);
        expect(tcc.failureReason).toMatch(/prepared_timeout/);
        expect(svc.calls.filter((c) => c.gid === tccGid).map((c) => c.op)).toEqual(["cancel"]);
      } finally {
        second.child.kill("SIGTERM");
        await second.exited;
      }
    });
  });
}
