import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from "mysql2/promise";
import { Barrier, type BarrierDatabase } from "./barrier.js";
import { MYSQL_BARRIER_DDL } from "./ddl.js";

/**
 * A barrier in a MySQL/MariaDB database through a mysql2 pool. The business function gets the
 * connection whose transaction holds the barrier row.
 * @example const barrier = createMysqlBarrier(pool); await barrier.call(info, (conn) => conn.query(…))
 */
export function createMysqlBarrier(pool: Pool): Barrier<PoolConnection> {
  const db: BarrierDatabase<PoolConnection> = {
    async transaction(fn) {
      const conn = await pool.getConnection();
      try {
        await conn.beginTransaction();
        const result = await fn(conn);
        await conn.commit();
        return result;
      } catch (error) {
        await conn.rollback();
        throw error;
      } finally {
        conn.release();
      }
    },
    async insert(conn, row) {
      const [result] = await conn.query<ResultSetHeader>(
        "INSERT IGNORE INTO accord_barrier (gid, branch_id, op, reason, created_at) VALUES (?, ?, ?, ?, ?)",
        [row.gid, row.branchId, row.op, row.reason, Date.now()],
      );
      return result.affectedRows > 0;
    },
    async reason(conn, key) {
      const [rows] = await conn.query<RowDataPacket[]>("SELECT reason FROM accord_barrier WHERE gid = ? AND branch_id = ? AND op = ?", [key.gid, key.branchId, key.op]);
      return rows[0]?.reason as string | undefined;
    },
    async deleteBefore(before, limit) {
      // Autocommit, by the created_at index: each batch holds its row locks only for itself.
      const [result] = await pool.query<ResultSetHeader>("DELETE FROM accord_barrier WHERE created_at < ? ORDER BY created_at LIMIT ?", [before, limit]);
      return result.affectedRows;
    },
    async createTable() {
      await pool.query(MYSQL_BARRIER_DDL);
    },
  };
  return new Barrier(db);
}
