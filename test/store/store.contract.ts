import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { openStore, type Store } from "../../server/store/index.js";
import type { StoreBackend } from "../support/stores.js";
import { transitionOp } from "../../server/engine/transitions.js";
import { addBranches, branchRecord, casTx, createTx, txRecord, updateBranch } from "./fixtures.js";

/** The behaviour every Store backend must have; run once per backend. */
export function describeStoreContract(backend: StoreBackend) {
  describe(`Store contract: ${backend.name}`, () => {
    let store: Store;
    let url: string;
    const opened: Store[] = [];
    const open = async (u: string) => {
      const s = await openStore({ url: u, poolSize: 8 });
      opened.push(s);
      return s;
    };

    beforeEach(async () => {
      url = await backend.freshUrl();
      store = await open(url);
    });

    afterAll(async () => {
      await Promise.allSettled(opened.map((s) => s.close()));
      await backend.cleanup();
    });

    it("creates a transaction with its branches and reads them back in execution order", async () => {
      const branches = [
        branchRecord("g1", 2, "compensate"),
        branchRecord("g1", 2, "action", { after: ["01"] }),
        branchRecord("g1", 1, "compensate"),
        branchRecord("g1", 1, "action", { payload: new Uint8Array([0, 255, 7]) }),
      ];
      await expect(createTx(store, txRecord("g1", { traceparent: "00-abc-def-01" }), branches)).resolves.toEqual({
        created: true,
      });
      const got = await store.getTransaction("g1");
      expect(got?.transaction).toMatchObject({ gid: "g1", mode: "saga", status: "submitted", stalled: false, traceparent: "00-abc-def-01" });
      expect(got?.branches.map((b) => `${b.branchId}/${b.op}`)).toEqual(["01/action", "01/compensate", "02/action", "02/compensate"]);
      expect(Array.from(got!.branches[0]!.payload)).toEqual([0, 255, 7]);
      expect(got?.branches[2]?.after).toEqual(["01"]);
    });

    it("returns the existing row for a second create with the same gid and writes nothing", async () => {
      await createTx(store, txRecord("dup", { contentHash: "a" }), [branchRecord("dup", 1, "action")]);
      const again = await createTx(store, txRecord("dup", { contentHash: "b" }), [
        branchRecord("dup", 1, "action"),
        branchRecord("dup", 2, "action"),
      ]);
      expect(again.created).toBe(false);
      expect(again.created === false && again.existing.contentHash).toBe("a");
      expect((await store.getTransaction("dup"))?.branches).toHaveLength(1);
    });

    it("writes nothing when one branch of a create fails (atomic create)", async () => {
      const clash = [branchRecord("atomic", 1, "action"), branchRecord("atomic", 1, "action")];
      await expect(createTx(store, txRecord("atomic"), clash)).rejects.toThrow();
      expect(await store.getTransaction("atomic")).toBeUndefined();
    });

    it("changes status only when the expected status and owner still hold (CAS)", async () => {
      await createTx(store, txRecord("cas", { owner: "c1" }), []);
      // A TCC row in SUBMITTED: the store checks the transition's `from`, and the owner.
      await createTx(store, txRecord("cas-tcc", { mode: "tcc", owner: "c1" }), []);
      expect(await casTx(store, transitionOp("cas", "saga", "aborting", "failed"))).toBe(false);
      expect(await casTx(store, transitionOp("cas", "saga", "submitted", "aborting", {}, "c2"))).toBe(false);
      expect(await casTx(store, transitionOp("cas", "saga", "submitted", "aborting", { lastError: "boom" }, "c1"))).toBe(true);
      expect(await casTx(store, transitionOp("cas", "saga", "submitted", "succeeded"))).toBe(false);
      expect(await casTx(store, transitionOp("missing", "saga", "aborting", "failed"))).toBe(false);
      // Without a transition, the status stays as it is whatever else changes.
      expect(await casTx(store, { kind: "transaction", gid: "cas-tcc", expect: { statuses: ["submitted"] }, changes: { lastError: "x" } })).toBe(true);
      expect((await store.getTransaction("cas-tcc"))?.transaction).toMatchObject({ status: "submitted", lastError: "x" });
      expect((await store.getTransaction("cas"))?.transaction).toMatchObject({ status: "aborting", lastError: "boom" });
    });

    it("lets exactly one of many concurrent CAS updates win", async () => {
      await createTx(store, txRecord("race"), []);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => casTx(store, transitionOp("race", "saga", "submitted", "aborting", { lastError: `w${i}` }))),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it("updates a branch only while its transaction is in an allowed status", async () => {
      await createTx(store, txRecord("br"), [branchRecord("br", 1, "action")]);
      const key = { gid: "br", branchId: "01", op: "action" as const };
      expect(await updateBranch(store, key, ["aborting"], { status: "succeeded" })).toBe(false);
      expect(await updateBranch(store, key, ["submitted"], { status: "succeeded", attempts: 2, lastError: "x" })).toBe(true);
      expect(await updateBranch(store, { ...key, op: "compensate" }, ["submitted"], { status: "succeeded" })).toBe(false);
      expect((await store.getTransaction("br"))?.branches[0]).toMatchObject({ status: "succeeded", attempts: 2, lastError: "x" });
    });

    it("never changes a branch operation that is no longer pending", async () => {
      await createTx(store, txRecord("done-br"), [branchRecord("done-br", 1, "action", { status: "succeeded", attempts: 1 })]);
      const key = { gid: "done-br", branchId: "01", op: "action" as const };
      expect(await updateBranch(store, key, ["submitted"], { status: "pending", attempts: 5, lastError: "late" })).toBe(false);
      expect((await store.getTransaction("done-br"))?.branches[0]).toMatchObject({ status: "succeeded", attempts: 1, lastError: "" });
    });

    it("records operators' actions with the unit's other writes, and reads them back oldest first", async () => {
      await createTx(store, txRecord("adm"), []);
      const action = (id: string, at: number) => ({ id, gid: "adm", action: "retry" as const, branchId: "", op: "" as const, identity: "ops", reason: `r-${id}`, at });
      const outcomes = await store.write([
        { kind: "adminAction", action: action("b", 2) },
        { kind: "transaction", gid: "adm", expect: {}, changes: { stalled: false } },
      ]);
      expect(outcomes).toEqual([true, true]);
      await store.write([{ kind: "adminAction", action: { ...action("a", 1), action: "skip", branchId: "01", op: "compensate" } }]);
      expect(await store.getAdminActions("adm")).toEqual([{ ...action("a", 1), action: "skip", branchId: "01", op: "compensate" }, action("b", 2)]);
      expect(await store.getAdminActions("other")).toEqual([]);
    });

    it("adds branches only while the transaction is in an allowed status", async () => {
      await createTx(store, txRecord("add", { mode: "tcc", status: "prepared" }), []);
      expect(await addBranches(store, "add", ["prepared"], [branchRecord("add", 1, "confirm")])).toBe(true);
      expect(await addBranches(store, "add", ["submitted"], [branchRecord("add", 2, "confirm")])).toBe(false);
      expect(await addBranches(store, "nope", ["prepared"], [branchRecord("nope", 1, "confirm")])).toBe(false);
      expect((await store.getTransaction("add"))?.branches.map((b) => b.branchId)).toEqual(["01"]);
    });

    it("claims due, unleased work once, and expired leases again", async () => {
      const now = Date.now();
      await createTx(store, txRecord("due1", { nextAttemptAt: now - 10 }), []);
      await createTx(store, txRecord("due2", { nextAttemptAt: now - 5 }), []);
      await createTx(store, txRecord("later", { nextAttemptAt: now + 60_000 }), []);
      await createTx(store, txRecord("leased", { nextAttemptAt: now - 10, owner: "x", leaseUntil: now + 60_000 }), []);
      await createTx(store, txRecord("expired", { nextAttemptAt: now - 10, owner: "dead", leaseUntil: now - 1 }), []);
      await createTx(store, txRecord("idle"), []);

      const [a, b] = await Promise.all([store.claimDue("A", now, now + 5000, 10), store.claimDue("B", now, now + 5000, 10)]);
      const claimed = [...a, ...b].map((t) => t.gid).sort();
      expect(claimed).toEqual(["due1", "due2", "expired"]);
      for (const t of [...a, ...b]) expect(t.leaseUntil).toBe(now + 5000);
      expect(a.every((t) => t.owner === "A") && b.every((t) => t.owner === "B")).toBe(true);
      expect(await store.claimDue("C", now, now + 5000, 10)).toEqual([]);
      // After the leases run out, another coordinator takes the work over.
      const takeover = await store.claimDue("C", now + 6000, now + 11_000, 10);
      expect(takeover.map((t) => t.gid).sort()).toEqual(["due1", "due2", "expired"]);
    });

    it("says who held each claimed row before, so a takeover of another's lease shows", async () => {
      const now = Date.now();
      await createTx(store, txRecord("free", { nextAttemptAt: now - 10 }), []);
      await createTx(store, txRecord("orphan", { nextAttemptAt: now - 10, owner: "dead", leaseUntil: now - 1 }), []);
      const claimed = await store.claimDue("A", now, now + 5000, 10);
      expect(Object.fromEntries(claimed.map((t) => [t.gid, t.previousOwner]))).toEqual({ free: null, orphan: "dead" });
      // A never gave them back: once its leases run out, B takes both over from A.
      const takeover = await store.claimDue("B", now + 6000, now + 11_000, 10);
      expect(Object.fromEntries(takeover.map((t) => [t.gid, [t.previousOwner, t.owner]]))).toEqual({ free: ["A", "B"], orphan: ["A", "B"] });
    });

    it("counts the backlog: unfinished, due and unleased, the oldest due time, stalled", async () => {
      const now = Date.now();
      expect(await store.backlog(now)).toEqual({ unfinished: 0, due: 0, oldestDueAt: null, stalled: 0 });
      await createTx(store, txRecord("bl-oldest", { nextAttemptAt: now - 5000 }), []);
      await createTx(store, txRecord("bl-due", { nextAttemptAt: now, stalled: true }), []);
      await createTx(store, txRecord("bl-expired", { nextAttemptAt: now - 20, owner: "dead", leaseUntil: now - 1 }), []);
      await createTx(store, txRecord("bl-later", { nextAttemptAt: now + 60_000, stalled: true }), []);
      await createTx(store, txRecord("bl-leased", { nextAttemptAt: now - 9000, owner: "x", leaseUntil: now + 60_000 }), []);
      await createTx(store, txRecord("bl-prepared", { mode: "tcc", status: "prepared", nextAttemptAt: now + 30_000 }), []);
      // Final rows are history, whatever else they say.
      await createTx(store, txRecord("bl-done", { status: "succeeded", finishedAt: now, nextAttemptAt: null }), []);
      await createTx(store, txRecord("bl-failed", { status: "failed", finishedAt: now, nextAttemptAt: now - 100, stalled: true }), []);
      expect(await store.backlog(now)).toEqual({ unfinished: 6, due: 3, oldestDueAt: now - 5000, stalled: 2 });
      // What claimDue takes leaves the due backlog.
      await store.claimDue("A", now, now + 5000, 1);
      expect(await store.backlog(now)).toEqual({ unfinished: 6, due: 2, oldestDueAt: now - 20, stalled: 2 });
    });

    it("respects the claim batch limit, oldest due first", async () => {
      const now = Date.now();
      for (let i = 0; i < 5; i++) await createTx(store, txRecord(`lim${i}`, { nextAttemptAt: now - 100 + i }), []);
      const got = await store.claimDue("A", now, now + 1000, 2);
      expect(got.map((t) => t.gid).sort()).toEqual(["lim0", "lim1"]);
    });

    it("renews leases only for rows the owner still holds", async () => {
      const now = Date.now();
      await createTx(store, txRecord("r1", { owner: "A", leaseUntil: now }), []);
      await createTx(store, txRecord("r2", { owner: "B", leaseUntil: now }), []);
      const held = (gid: string, generation = 0) => ({ gid, generation });
      expect(await store.renewLeases("A", [held("r1"), held("r2"), held("r3")], now + 9000)).toEqual(["r1"]);
      expect((await store.getTransaction("r2"))?.transaction.leaseUntil).toBe(now);
      // Renewals that cross: the later lease stays, and the earlier renewal still counts as held.
      expect(await store.renewLeases("A", [held("r1")], now + 20_000)).toEqual(["r1"]);
      expect(await store.renewLeases("A", [held("r1")], now + 10_000)).toEqual(["r1"]);
      expect((await store.getTransaction("r1"))?.transaction.leaseUntil).toBe(now + 20_000);
      // Taken again under the same owner id (a restarted process): the older generation has lost it.
      await createTx(store, txRecord("r4", { owner: "A", leaseUntil: now, leaseGeneration: 3 }), []);
      expect(await store.renewLeases("A", [held("r4", 2)], now + 9000)).toEqual([]);
      expect(await store.renewLeases("A", [held("r4", 3)], now + 9000)).toEqual(["r4"]);
      expect(await casTx(store, { kind: "transaction", gid: "r4", expect: { owner: "A", leaseGeneration: 2 }, changes: { lastError: "stale" } })).toBe(false);
      expect(await casTx(store, { kind: "transaction", gid: "r4", expect: { owner: "A", leaseGeneration: 3 }, changes: { lastError: "fresh" } })).toBe(true);
    });

    it("lists newest first with filters and stable page tokens", async () => {
      const base = 1_700_000_000_000;
      for (let i = 0; i < 7; i++) {
        await createTx(store, 
          txRecord(`list_${i}`, { createdAt: base + Math.floor(i / 2), mode: i % 2 ? "tcc" : "saga", status: i === 3 ? "failed" : "submitted", stalled: i === 5 }),
          [],
        );
      }
      await createTx(store, txRecord("listXother", { createdAt: base }), []);
      const seen: string[] = [];
      let after;
      do {
        const page = await store.listTransactions({ statuses: [], modes: [], stalledOnly: false, limit: 3, gidPrefix: "list_", after });
        seen.push(...page.transactions.map((t) => t.gid));
        after = page.next;
      } while (after);
      expect(seen).toEqual(["list_6", "list_5", "list_4", "list_3", "list_2", "list_1", "list_0"]);

      const tcc = await store.listTransactions({ statuses: ["submitted"], modes: ["tcc"], stalledOnly: false, limit: 50 });
      expect(tcc.transactions.map((t) => t.gid)).toEqual(["list_5", "list_1"]);
      const stalled = await store.listTransactions({ statuses: [], modes: [], stalledOnly: true, limit: 50 });
      expect(stalled.transactions.map((t) => t.gid)).toEqual(["list_5"]);
      const window = await store.listTransactions({ statuses: [], modes: [], stalledOnly: false, limit: 50, createdAfter: base + 1, createdBefore: base + 3, gidPrefix: "list" });
      expect(window.transactions.map((t) => t.gid)).toEqual(["list_5", "list_4", "list_3", "list_2"]);
    });

    it("tells gids, branch ids and request ids apart by case, as SQLite does", async () => {
      for (const gid of ["Order-1", "order-1"]) {
        expect(await store.write([{ kind: "create", transaction: txRecord(gid, { contentHash: gid }), branches: [branchRecord(gid, 1, "action"), branchRecord(gid, 1, "action", { branchId: "0A" }), branchRecord(gid, 1, "action", { branchId: "0a" })] }])).toEqual([{ created: true }]);
      }
      expect((await store.getTransaction("Order-1"))?.transaction.contentHash).toBe("Order-1");
      expect((await store.getTransaction("order-1"))?.branches.map((b) => b.branchId).sort()).toEqual(["01", "0A", "0a"]);
      const request = { requestId: "Req-A", caller: "Spiffe://x", method: "Submit", gid: "Order-1", fingerprint: "f", createdAt: Date.now() };
      expect(await store.write([{ kind: "request", request }])).toEqual([{ created: true }]);
      expect(await store.write([{ kind: "request", request: { ...request, requestId: "req-a" } }])).toEqual([{ created: true }]);
      expect(await store.write([{ kind: "request", request: { ...request, caller: "spiffe://x" } }])).toEqual([{ created: true }]);
      expect(await store.getRequest("Spiffe://x", "req-a")).toMatchObject({ requestId: "req-a" });
    });

    it("matches a gid prefix literally: LIKE wildcards, the escape character, backslash, case and accents", async () => {
      const gids = ["pct%1", "pctX1", "und_1", "undX1", "bang!1", "bangX1", "bang!%1", "back\\1", "backX1", "Case-1", "case-2", "CASE-3", "café-1", "cafe-2"];
      for (const gid of gids) await createTx(store, txRecord(gid), []);
      const listed = async (gidPrefix: string) =>
        (await store.listTransactions({ statuses: [], modes: [], stalledOnly: false, limit: 50, gidPrefix })).transactions.map((t) => t.gid).sort();
      expect(await listed("pct%")).toEqual(["pct%1"]);
      expect(await listed("und_")).toEqual(["und_1"]);
      expect(await listed("bang!")).toEqual(["bang!%1", "bang!1"]);
      expect(await listed("bang!%")).toEqual(["bang!%1"]);
      expect(await listed("back\\")).toEqual(["back\\1"]);
      expect(await listed("Case")).toEqual(["Case-1"]);
      expect(await listed("case")).toEqual(["case-2"]);
      expect(await listed("café")).toEqual(["café-1"]);
      expect(await listed("%")).toEqual([]);
      expect(await listed("_")).toEqual([]);
      expect(await listed("!")).toEqual([]);
      expect(await listed("Case-1")).toEqual(["Case-1"]);
      // Longer than any gid, and than SQLite's LIKE pattern limit (50,000 bytes): no match, no error.
      expect(await listed(`Case-1${"x".repeat(100_000)}`)).toEqual([]);
    });

    it("groups concurrent writes, keeping each caller's outcome its own", async () => {
      const creates = Array.from({ length: 40 }, (_, i) =>
        createTx(store, txRecord(`grp${i}`), [branchRecord(`grp${i}`, 1, "action"), branchRecord(`grp${i}`, 1, "compensate")]),
      );
      const duplicate = createTx(store, txRecord("grp0", { contentHash: "other" }), []);
      const broken = createTx(store, txRecord("grp-bad"), [branchRecord("grp-bad", 1, "action"), branchRecord("grp-bad", 1, "action")]);
      const results = await Promise.allSettled([...creates, duplicate, broken]);
      expect(results.slice(0, 40).every((r) => r.status === "fulfilled" && r.value.created)).toBe(true);
      expect(results[40]).toMatchObject({ status: "fulfilled", value: { created: false, existing: { contentHash: "hash-grp0" } } });
      expect(results[41]?.status).toBe("rejected");
      expect(await store.getTransaction("grp-bad")).toBeUndefined();
      expect((await store.getTransaction("grp39"))?.branches).toHaveLength(2);
    });

    it("applies a unit's ops in order: branch progress, then the guarded status change", async () => {
      await createTx(store, txRecord("unit", { owner: "me" }), [branchRecord("unit", 1, "action"), branchRecord("unit", 2, "action")]);
      const outcomes = await store.write([
        { kind: "branches", gid: "unit", keys: [{ branchId: "01", op: "action" }, { branchId: "02", op: "action" }], statuses: ["submitted"], changes: { status: "succeeded", attempts: 1 } },
        transitionOp("unit", "saga", "submitted", "succeeded", { owner: null }, "me"),
        // The table has no submitted → failed for a SAGA; the guard is the point here, not the table.
        transitionOp("unit", "saga", "aborting", "failed"),
      ]);
      expect(outcomes).toEqual([true, true, false]);
      const got = await store.getTransaction("unit");
      expect(got?.transaction).toMatchObject({ status: "succeeded", owner: null });
      expect(got?.branches.map((b) => b.status)).toEqual(["succeeded", "succeeded"]);
      // A late result for a finished transaction does not land.
      expect(await updateBranch(store, { gid: "unit", branchId: "01", op: "action" }, ["submitted"], { status: "failed" })).toBe(false);
    });

    it("remembers a request_id once per caller, atomically with the unit's other writes", async () => {
      const request = { requestId: "req-1", caller: "spiffe://a", method: "Submit", gid: "rq", fingerprint: "f1", createdAt: Date.now() };
      const [first, created] = await store.write([{ kind: "request", request }, { kind: "create", transaction: txRecord("rq"), branches: [] }]);
      expect(first).toEqual({ created: true });
      expect(created).toEqual({ created: true });
      const [again] = await store.write([{ kind: "request", request: { ...request, gid: "other" } }]);
      expect(again).toEqual({ created: false, existing: request });
      expect(await store.getRequest("spiffe://a", "req-1")).toEqual(request);
      expect(await store.getRequest("spiffe://a", "req-2")).toBeUndefined();
      // The same id from another caller is another request.
      expect(await store.getRequest("spiffe://b", "req-1")).toBeUndefined();
      const other = { ...request, caller: "spiffe://b", gid: "rq-b" };
      expect(await store.write([{ kind: "request", request: other }])).toEqual([{ created: true }]);
      expect(await store.getRequest("spiffe://b", "req-1")).toEqual(other);
      expect(await store.getRequest("spiffe://a", "req-1")).toEqual(request);
      // A unit that fails writes neither its request nor its effect.
      const bad = store.write([
        { kind: "request", request: { ...request, requestId: "req-3" } },
        { kind: "create", transaction: txRecord("rq-bad"), branches: [branchRecord("rq-bad", 1, "action"), branchRecord("rq-bad", 1, "action")] },
      ]);
      await expect(bad).rejects.toThrow();
      expect(await store.getRequest("spiffe://a", "req-3")).toBeUndefined();
    });

    it("deletes finished transactions older than a time, oldest first in bounded batches, with every row naming them; never an unfinished one", async () => {
      const finished = (gid: string, status: "succeeded" | "failed", finishedAt: number) =>
        createTx(store, txRecord(gid, { status, createdAt: finishedAt - 100, finishedAt }), [branchRecord(gid, 1, "action"), branchRecord(gid, 1, "compensate")]);
      await finished("old-1", "succeeded", 1000);
      await finished("old-2", "failed", 2000);
      await finished("old-3", "succeeded", 3000);
      await finished("young", "succeeded", 10_000);
      await createTx(store, txRecord("running", { createdAt: 100 }), [branchRecord("running", 1, "action")]);
      // A finished_at on a row whose status is not final (no writer does this) still does not qualify.
      await createTx(store, txRecord("odd", { status: "aborting", createdAt: 100, finishedAt: 500 }), []);
      const request = (requestId: string, gid: string) => ({ requestId, caller: "", method: "Submit", gid, fingerprint: "f", createdAt: 100 });
      await store.write([{ kind: "request", request: request("req-old-1", "old-1") }, { kind: "request", request: request("req-running", "running") }]);
      await store.write([{ kind: "adminAction", action: { id: "act-1", gid: "old-1", action: "retry", branchId: "", op: "", identity: "ops", reason: "r", at: 900 } }]);

      expect(await store.deleteFinished(5000, 2)).toEqual({ transactions: 2, branches: 4, requests: 1, adminActions: 1 });
      expect(await store.getTransaction("old-1")).toBeUndefined();
      expect(await store.getTransaction("old-2")).toBeUndefined();
      expect(await store.getRequest("", "req-old-1")).toBeUndefined();
      expect(await store.getAdminActions("old-1")).toEqual([]);
      expect((await store.getTransaction("old-3"))?.branches).toHaveLength(2);

      expect(await store.deleteFinished(5000, 2)).toEqual({ transactions: 1, branches: 2, requests: 0, adminActions: 0 });
      expect(await store.deleteFinished(5000, 2)).toEqual({ transactions: 0, branches: 0, requests: 0, adminActions: 0 });
      for (const gid of ["young", "running", "odd"]) expect((await store.getTransaction(gid))?.transaction.gid).toBe(gid);
      expect((await store.getTransaction("running"))?.branches).toHaveLength(1);
      expect(await store.getRequest("", "req-running")).toMatchObject({ gid: "running" });
    });

    it("counts each deleted row once when retention runs concurrently", async () => {
      for (let i = 0; i < 30; i++) {
        await createTx(store, txRecord(`ret-${i}`, { status: "succeeded", createdAt: 100, finishedAt: 1000 + i }), [branchRecord(`ret-${i}`, 1, "action")]);
      }
      const drain = async () => {
        let total = 0;
        for (;;) {
          const { transactions } = await store.deleteFinished(5000, 4);
          total += transactions;
          if (transactions === 0) return total;
        }
      };
      const totals = await Promise.all([drain(), drain(), drain()]);
      expect(totals.reduce((a, b) => a + b, 0)).toBe(30);
      expect((await store.listTransactions({ statuses: [], modes: [], stalledOnly: false, limit: 50 })).transactions).toEqual([]);
    });

    it("keeps committed data across close and reopen, re-running migrations harmlessly", async () => {
      await createTx(store, txRecord("durable"), [branchRecord("durable", 1, "action")]);
      await store.close();
      const reopened = await open(url);
      expect((await reopened.getTransaction("durable"))?.branches).toHaveLength(1);
      await expect(reopened.ping()).resolves.toBeUndefined();
    });
  });
}
