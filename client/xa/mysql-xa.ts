import { createHash } from "node:crypto";
import type { Pool, PoolConnection, RowDataPacket } from "mysql2/promise";
import type { BranchInfo } from "../branch-handler.js";

const XAER_NOTA = 1397; // unknown XID: already committed or rolled back, or never prepared

/** XA ids are at most 64 bytes; gids may be 128 characters, so the id is a digest of (gid, branch). */
export function xaId(info: Pick<BranchInfo, "gid" | "branchId">): string {
  return createHash("sha1").update(`${info.gid}\u0000${info.branchId}`).digest("hex");
}

const isUnknownXid = (error: unknown) => typeof error === "object" && error !== null && "errno" in error && error.errno === XAER_NOTA;

/**
 * XA COMMIT or ROLLBACK, idempotently: an unknown XID that no session still holds prepared has
 * already been finished. One still attached to the session that prepared it (its disconnect not
 * yet processed) is reported as an error, so the coordinator retries.
 */
async function finish(pool: Pool, verb: "COMMIT" | "ROLLBACK", xid: string): Promise<void> {
  try {
    await pool.query(`XA ${verb} ?`, [xid]);
  } catch (error) {
    if (!isUnknownXid(error)) throw error;
    const [pending] = await pool.query<RowDataPacket[]>("XA RECOVER");
    if (pending.some((row) => String(row.data) === xid)) throw new Error(`XA ${verb} ${xid}: still attached to its session; retry`);
  }
}

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
      let prepared = false;
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
        prepared = true;
      } finally {
        // A session holding a prepared XA branch can do nothing else; closing it detaches the
        // branch (kept by the server) so commit/rollback can come from any connection.
        if (prepared) conn.destroy();
        else conn.release();
      }
    },
    commit: (info: BranchInfo) => finish(pool, "COMMIT", xaId(info)),
    rollback: (info: BranchInfo) => finish(pool, "ROLLBACK", xaId(info)),
  };
}
