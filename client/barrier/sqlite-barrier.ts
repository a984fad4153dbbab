import type { Client, Transaction } from "@libsql/client";
import { Barrier, type BarrierDatabase } from "./barrier.js";
import { SQLITE_BARRIER_DDL } from "./ddl.js";

/**
 * A barrier in a SQLite database through @libsql/client. The business function gets the libsql
 * transaction that holds the barrier row.
 *
 * SQLite has one writer, and libsql's local driver waits for a lock synchronously, blocking the
 * event loop that would let the holder finish; so this process's barrier transactions take turns
 * here instead. Other processes writing the same file need the client's `timeout` (busy timeout).
 */
export function createSqliteBarrier(client: Client): Barrier<Transaction> {
  let turn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(run: () => Promise<T>): Promise<T> => {
    const result = turn.then(run, run);
    turn = result.catch(() => undefined); // the caller gets the error; the next turn still runs
    return result;
  };
  const db: BarrierDatabase<Transaction> = {
    transaction(fn) {
      return inTurn(async () => {
        const tx = await client.transaction("write");
        try {
          const result = await fn(tx);
          await tx.commit();
          return result;
        } catch (error) {
          await tx.rollback();
          throw error;
        } finally {
          tx.close();
        }
      });
    },
    async insert(tx, row) {
      const result = await tx.execute({
        sql: "INSERT OR IGNORE INTO accord_barrier (gid, branch_id, op, reason, created_at) VALUES (?, ?, ?, ?, ?)",
        args: [row.gid, row.branchId, row.op, row.reason, Date.now()],
      });
      return result.rowsAffected > 0;
    },
    async reason(tx, key) {
      const result = await tx.execute({ sql: "SELECT reason FROM accord_barrier WHERE gid = ? AND branch_id = ? AND op = ?", args: [key.gid, key.branchId, key.op] });
      const value = result.rows[0]?.reason;
      return typeof value === "string" ? value : undefined;
    },
    deleteBefore(before, limit) {
      // A turn like any barrier transaction: a delete waiting on one open here would block the
      // event loop that lets it finish.
      return inTurn(async () => {
        const result = await client.execute({
          sql: "DELETE FROM accord_barrier WHERE rowid IN (SELECT rowid FROM accord_barrier WHERE created_at < ? ORDER BY created_at LIMIT ?)",
          args: [before, limit],
        });
        return result.rowsAffected;
      });
    },
    async createTable() {
      await client.batch(SQLITE_BARRIER_DDL, "write");
    },
  };
  return new Barrier(db);
}
