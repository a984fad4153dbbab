import { createHash } from "node:crypto";
import type { Pool, PoolConnection } from "mysql2/promise";
import type { BranchInfo } from "../branch-handler.js";

const XAER_NOTA = 1397; // unknown XID: already committed or rolled back, or never prepared

/** XA ids are at most 64 bytes; gids may be 128 characters, so the id is a digest of (gid, branch). */
export function xaId(info: Pick<BranchInfo, "gid" | "branchId">): string {
  return createHash("sha1").update(`${info.gid}\u0000${info.branchId}`).digest("hex");
}

const isUnknownXid = (error: unknown) => typeof error === "object" && error !== null && "errno" in error && error.errno === XAER_NOTA;

/**
 * XA branches on MySQL/MariaDB through mysql2: the branch's local work runs inside
 * XA START … XA END; XA PREPARE, and the coordinator's commit and rollback calls finish it.
 * Commit and rollback are idempotent (an unknown XID means it already happened).
 * Limitation: a prepare that arrives after its rollback leaves a prepared XA branch behind;
 * `XA RECOVER` lists such branches for an operator.
 */
export function createMysqlXa(pool: Pool) {
  return {
    /** Runs `work` and XA-prepares it; after this the branch answers 2xx to the application. */
    async prepare(info: BranchInfo, work: (conn: PoolConnection) => Promise<void>): Promise<void> {
      const xid = xaId(info);
      const conn = await pool.getConnection();
      try {
        await conn.query("XA START ?", [xid]);
        try {
          await work(conn);
          await conn.query("XA END ?", [xid]);
        } catch (error) {
          await conn.query("XA END ?", [xid]);
          await conn.query("XA ROLLBACK ?", [xid]);
          throw error;
        }
        await conn.query("XA PREPARE ?", [xid]);
      } finally {
        conn.release();
      }
    },
    async commit(info: BranchInfo): Promise<void> {
      await pool.query("XA COMMIT ?", [xaId(info)]).catch((error: unknown) => {
        if (!isUnknownXid(error)) throw error;
      });
    },
    async rollback(info: BranchInfo): Promise<void> {
      await pool.query("XA ROLLBACK ?", [xaId(info)]).catch((error: unknown) => {
        if (!isUnknownXid(error)) throw error;
      });
    },
  };
}
