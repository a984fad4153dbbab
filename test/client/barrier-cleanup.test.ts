import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient as createLibsql } from "@libsql/client";
import mysql from "mysql2/promise";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { createMysqlBarrier, createSqliteBarrier, type Barrier, type BranchInfo } from "../../client/index.js";
import { gate } from "../support/wait-until.js";

/** A barrier on a fresh database, a way to write rows of a given age, and the DELETEs it sent. */
interface Fixture {
  barrier: Barrier<never>;
  insertOld(gid: string, createdAt: number): Promise<void>;
  gids(): Promise<string[]>;
  deletes(): number;
  close(): Promise<void>;
}

async function mysqlFixture(): Promise<Fixture> {
  const database = `barrier_cleanup_${randomBytes(4).toString("hex")}`;
  const admin = await mysql.createConnection({ host: "127.0.0.1", port: inject("mariadbPort"), user: "root" });
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();
  const pool = mysql.createPool({ host: "127.0.0.1", port: inject("mariadbPort"), user: "root", database, connectionLimit: 4 });
  const barrier = createMysqlBarrier(pool);
  await barrier.createTable();
  const query = vi.spyOn(pool, "query");
  return {
    barrier: barrier as Barrier<never>,
    insertOld: async (gid, createdAt) => void (await pool.query("INSERT INTO accord_barrier VALUES (?, '01', 'action', 'action', ?)", [gid, createdAt])),
    gids: async () => ((await pool.query("SELECT gid FROM accord_barrier ORDER BY gid"))[0] as { gid: string }[]).map((r) => r.gid),
    deletes: () => query.mock.calls.filter(([sql]) => String(sql).startsWith("DELETE")).length,
    close: () => pool.end(),
  };
}

async function sqliteFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "accord-barrier-cleanup-"));
  const client = createLibsql({ url: `file:${join(dir, "service.db")}`, timeout: 5000 });
  await client.execute("PRAGMA journal_mode = WAL");
  const barrier = createSqliteBarrier(client);
  await barrier.createTable();
  const execute = vi.spyOn(client, "execute");
  return {
    barrier: barrier as Barrier<never>,
    insertOld: async (gid, createdAt) => void (await client.execute({ sql: "INSERT INTO accord_barrier VALUES (?, '01', 'action', 'action', ?)", args: [gid, createdAt] })),
    gids: async () => (await client.execute("SELECT gid FROM accord_barrier ORDER BY gid")).rows.map((r) => String(r.gid)),
    deletes: () => execute.mock.calls.filter(([statement]) => (typeof statement === "string" ? statement : (statement as { sql: string }).sql).startsWith("DELETE")).length,
    close: async () => {
      client.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const info = (gid: string): BranchInfo => ({ gid, branchId: "01", op: "action", mode: "saga", fence: 1 });
const HOUR = 3_600_000;

for (const [name, make] of [["mysql2", mysqlFixture], ["libsql", sqliteFixture]] as const) {
  describe(`barrier.cleanup (${name})`, () => {
    let f: Fixture;
    afterEach(async () => {
      vi.restoreAllMocks();
      await f.close();
    });

    it("deletes rows older than the age in batches, and only those", async () => {
      f = await make();
      const old = Array.from({ length: 25 }, (_, i) => `old-${String(i).padStart(2, "0")}`);
      for (const [i, gid] of old.entries()) await f.insertOld(gid, Date.now() - 2 * HOUR - i);
      await f.barrier.call(info("young-1"), async () => {});
      await f.barrier.call(info("young-2"), async () => {});

      const before = f.deletes();
      expect(await f.barrier.cleanup(HOUR, { batchSize: 10 })).toBe(25);
      // 10, 10, then 5: a short batch means nothing that old is left.
      expect(f.deletes() - before).toBe(3);
      expect(await f.gids()).toEqual(["young-1", "young-2"]);
      // The rows kept still do their job: a repeated call is a duplicate.
      expect(await f.barrier.call(info("young-1"), async () => {})).toBe("duplicate");
      expect(await f.barrier.cleanup(HOUR)).toBe(0);
    });

    it("cleans up while a barrier transaction is open, without a deadlock", async () => {
      f = await make();
      await f.insertOld("old", Date.now() - 2 * HOUR);
      const inside = gate(10_000);
      const release = gate(10_000);
      const call = f.barrier.call(info("busy"), async () => {
        inside.open();
        await release.opened;
      });
      await inside.opened;
      const cleanup = f.barrier.cleanup(HOUR);
      release.open();
      expect(await call).toBe("applied");
      expect(await cleanup).toBe(1);
      expect(await f.gids()).toEqual(["busy"]);
    });

    it("refuses a negative age or an empty batch", async () => {
      f = await make();
      await expect(f.barrier.cleanup(-1)).rejects.toThrow(/olderThanMs/);
      await expect(f.barrier.cleanup(HOUR, { batchSize: 0 })).rejects.toThrow(/batchSize/);
    });
  });
}
