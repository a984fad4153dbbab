import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient as createLibsql, type Client as Libsql } from "@libsql/client";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { BranchFailure, createMysqlBarrier, createSqliteBarrier, type Barrier, type BranchInfo } from "../../client/index.js";

/** Per database: a barrier, and a way to write and read a ledger inside the business transaction. */
interface Fixture {
  name: string;
  barrier: Barrier<never>;
  credit(tx: unknown, gid: string, amount: number): Promise<void>;
  total(gid: string): Promise<number>;
  rows(gid: string): Promise<number>;
  close(): Promise<void>;
}

async function mysqlFixture(): Promise<Fixture> {
  const database = `barrier_${randomBytes(4).toString("hex")}`;
  const admin = await mysql.createConnection({ host: "127.0.0.1", port: inject("mariadbPort"), user: "root" });
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const pool = mysql.createPool({ host: "127.0.0.1", port: inject("mariadbPort"), user: "root", database, connectionLimit: 20 });
  await pool.query("CREATE TABLE ledger (gid VARCHAR(128), amount INT)");
  const barrier = createMysqlBarrier(pool);
  await barrier.createTable();
  return {
    name: "mysql",
    barrier: barrier as Barrier<never>,
    credit: async (tx, gid, amount) => void (await (tx as mysql.PoolConnection).query("INSERT INTO ledger VALUES (?, ?)", [gid, amount])),
    total: async (gid) => Number(((await pool.query("SELECT COALESCE(SUM(amount),0) AS t FROM ledger WHERE gid = ?", [gid]))[0] as { t: number }[])[0]!.t),
    rows: async (gid) => Number(((await pool.query("SELECT COUNT(*) AS n FROM accord_barrier WHERE gid = ?", [gid]))[0] as { n: number }[])[0]!.n),
    close: () => pool.end(),
  };
}

async function sqliteFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "accord-barrier-"));
  const client: Libsql = createLibsql({ url: `file:${join(dir, "bank.db")}`, timeout: 5000 });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute("CREATE TABLE ledger (gid TEXT, amount INTEGER)");
  const barrier = createSqliteBarrier(client);
  await barrier.createTable();
  return {
    name: "sqlite",
    barrier: barrier as Barrier<never>,
    credit: async (tx, gid, amount) => void (await (tx as { execute: Libsql["execute"] }).execute({ sql: "INSERT INTO ledger VALUES (?, ?)", args: [gid, amount] })),
    total: async (gid) => Number((await client.execute({ sql: "SELECT COALESCE(SUM(amount),0) AS t FROM ledger WHERE gid = ?", args: [gid] })).rows[0]!.t),
    rows: async (gid) => Number((await client.execute({ sql: "SELECT COUNT(*) AS n FROM accord_barrier WHERE gid = ?", args: [gid] })).rows[0]!.n),
    close: async () => {
      client.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

for (const make of [mysqlFixture, sqliteFixture]) {
  describe(`sub-transaction barrier (${make.name.replace("Fixture", "")})`, () => {
    let f: Fixture;
    beforeAll(async () => {
      f = await make();
    });
    afterAll(() => f.close());
    let n = 0;
    const info = (op: string, gid = `g${n}`): BranchInfo => ({ gid, mode: "saga", branchId: "01", op, fence: 1 });
    const next = () => `g${++n}-${Date.now()}`;

    it("applies an action once however often it is called, even concurrently", async () => {
      const gid = next();
      const results = await Promise.all(Array.from({ length: 5 }, () => f.barrier.call(info("action", gid), (tx) => f.credit(tx, gid, 10))));
      expect(results.filter((r) => r === "applied")).toHaveLength(1);
      expect(results.filter((r) => r === "duplicate")).toHaveLength(4);
      expect(await f.total(gid)).toBe(10);
    });

    it("undoes an action once, and does nothing for a compensation whose action never ran", async () => {
      const gid = next();
      await f.barrier.call(info("action", gid), (tx) => f.credit(tx, gid, 10));
      expect(await f.barrier.call(info("compensate", gid), (tx) => f.credit(tx, gid, -10))).toBe("applied");
      expect(await f.barrier.call(info("compensate", gid), (tx) => f.credit(tx, gid, -10))).toBe("duplicate");
      expect(await f.total(gid)).toBe(0);

      const never = next();
      expect(await f.barrier.call(info("compensate", never), (tx) => f.credit(tx, never, -10))).toBe("null-compensation");
      expect(await f.total(never)).toBe(0);
    });

    it("refuses an action (or try) that arrives after its compensation (no hanging)", async () => {
      const gid = next();
      await f.barrier.call(info("compensate", gid), (tx) => f.credit(tx, gid, -10));
      await expect(f.barrier.call(info("action", gid), (tx) => f.credit(tx, gid, 10))).rejects.toBeInstanceOf(BranchFailure);
      const tcc = next();
      await f.barrier.call({ ...info("cancel", tcc), mode: "tcc" }, (tx) => f.credit(tx, tcc, 5));
      await expect(f.barrier.call({ ...info("try", tcc), mode: "tcc" }, (tx) => f.credit(tx, tcc, -5))).rejects.toBeInstanceOf(BranchFailure);
      expect(await f.total(gid)).toBe(0);
      expect(await f.total(tcc)).toBe(0);
    });

    it("rolls the barrier row back with a failing business, so a retry runs it", async () => {
      const gid = next();
      await expect(f.barrier.call(info("action", gid), async () => Promise.reject(new Error("db full")))).rejects.toThrow("db full");
      expect(await f.rows(gid)).toBe(0);
      expect(await f.barrier.call(info("action", gid), (tx) => f.credit(tx, gid, 3))).toBe("applied");
    });

    it("answers query_prepared from the message's barrier row", async () => {
      const committed = next();
      await f.barrier.msg(committed, (tx) => f.credit(tx, committed, 7));
      await expect(f.barrier.queryPrepared(committed)).resolves.toBeUndefined();

      const never = next();
      await expect(f.barrier.queryPrepared(never)).rejects.toBeInstanceOf(BranchFailure);
      // The back-check settled it: the late local transaction may not commit now.
      await expect(f.barrier.msg(never, (tx) => f.credit(tx, never, 7))).rejects.toThrow(/already rolled back/);
      await expect(f.barrier.queryPrepared(never)).rejects.toBeInstanceOf(BranchFailure);
      expect(await f.total(never)).toBe(0);
    });

    it("cleans rows older than a given age", async () => {
      const gid = next();
      await f.barrier.call(info("action", gid), (tx) => f.credit(tx, gid, 1));
      expect(await f.barrier.cleanup(60_000)).toBe(0);
      await new Promise((r) => setTimeout(r, 20));
      expect(await f.barrier.cleanup(10)).toBeGreaterThan(0);
      expect(await f.rows(gid)).toBe(0);
    });
  });
}
