import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { and, asc, eq, gte, inArray, isNull, lt, lte, or, sql } from "drizzle-orm";
import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import { migrate } from "drizzle-orm/mysql2/migrator";
import mysql, { type ResultSetHeader, type RowDataPacket } from "mysql2/promise";
import { backlogColumns, toBacklogStats, unfinishedRows } from "../backlog-query.js";
import { chunks } from "../chunks.js";
import type {
  AdminActionRecord,
  HeldLease,
  BacklogStats,
  ClaimedTransaction,
  ListPage,
  ListQuery,
  TransactionRecord,
  TransactionWithBranches,
  RequestRecord,
} from "../records.js";
import {
  listOrder,
  listWhere,
  toAdminActionRecord,
  withPreviousOwners,
  sortBranches,
  toBranchRecord,
  toBranchRow,
  toListPage,
  toTransactionRecord,
} from "../row-mapping.js";
import { GroupedStore } from "../grouped-store.js";
import { createUpdateStatements } from "../update-statements.js";
import type { StoreObserver } from "../open-store.js";
import type { DeletedRows, Store } from "../store.js";
import type { WriteOp, WriteOutcome } from "../write-ops.js";
import { keysToRead, planWrites, requestsByKey, resolveStored } from "../write-plan.js";
import * as schema from "./schema.js";

const { transactions, branches, requests, adminActions } = schema;
const updates = createUpdateStatements(transactions, branches);
const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), "migrations");

export interface MysqlStoreOptions {
  /** Connections in the pool. */
  poolSize: number;
  /**
   * How long a statement waits for a row lock. InnoDB's default is 50 s: one coordinator paused
   * while holding locks would stall every other coordinator's writes that long.
   */
  lockWaitTimeoutSeconds: number;
  /** Told when a new connection could not be set up (it is then closed, never used). */
  onConnectionError?: (error: Error) => void;
  /** Told about every group commit (metrics). */
  observer?: StoreObserver;
}

/**
 * Opens the MySQL/MariaDB/TiDB store. The database named in the URL is created if missing, and
 * migrations run under a named lock so coordinators starting together do not race.
 */
export async function openMysqlStore(url: string, options: MysqlStoreOptions): Promise<Store> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (!/^[A-Za-z0-9_]+$/.test(database)) {
    throw new Error(`store URL must name a database of [A-Za-z0-9_] (got "${database}")`);
  }
  const admin = await mysql.createConnection({ uri: urlWithoutDatabase(parsed) });
  try {
    await admin.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4`);
  } finally {
    await admin.end();
  }
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: options.poolSize,
    enableKeepAlive: true,
    supportBigNumbers: true,
    // Lets a group's UPDATEs go in one round trip. Every statement is parameterized; no SQL is
    // ever assembled from request data.
    multipleStatements: true,
  });
  // Every session: READ COMMITTED (claims and CAS updates must see each other's commits) and a
  // short lock wait, so one stuck peer cannot stop the others.
  pool.pool.on("connection", (connection) => {
    const setup = `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; SET SESSION innodb_lock_wait_timeout = ${Math.floor(options.lockWaitTimeoutSeconds)}`;
    connection.query(setup, (error: Error | null) => {
      if (!error) return;
      options.onConnectionError?.(error);
      connection.destroy();
    });
  });
  const db = drizzle(pool, { schema, mode: "default" });
  await migrateUnderLock(pool, db);
  return new MysqlStore(pool, db, options.observer);
}

function urlWithoutDatabase(url: URL): string {
  const copy = new URL(url.href);
  copy.pathname = "/";
  return copy.href;
}

async function migrateUnderLock(pool: mysql.Pool, db: MySql2Database<typeof schema>): Promise<void> {
  const lockHolder = await pool.getConnection();
  try {
    await lockHolder.query("SELECT GET_LOCK('accord_migrate', 60)");
    await migrate(db, { migrationsFolder });
  } finally {
    await lockHolder.query("SELECT RELEASE_LOCK('accord_migrate')");
    lockHolder.release();
  }
}

const ER_DUP_ENTRY = 1062;
const ER_LOCK_DEADLOCK = 1213;

function hasErrno(error: unknown, errno: number): boolean {
  const cause = error instanceof Error && "cause" in error ? error.cause : undefined;
  return [error, cause].some((e) => typeof e === "object" && e !== null && "errno" in e && e.errno === errno);
}

const isDuplicateKey = (error: unknown) => hasErrno(error, ER_DUP_ENTRY);
const isDeadlock = (error: unknown) => hasErrno(error, ER_LOCK_DEADLOCK);

const TRANSACTION_ROWS_PER_INSERT = 1000;
/** Bytes of payload per INSERT, to stay well under max_allowed_packet (16 MiB by default). */
const BRANCH_BYTES_PER_INSERT = 4 * 1024 * 1024;
const BRANCH_ROWS_PER_INSERT = 1000;

/** Groups branch rows so each INSERT carries at most BRANCH_BYTES_PER_INSERT of payload. */
function chunksBySize<T extends { payload: Uint8Array }>(rows: T[]): T[][] {
  const out: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const row of rows) {
    if (current.length > 0 && (bytes + row.payload.byteLength > BRANCH_BYTES_PER_INSERT || current.length >= BRANCH_ROWS_PER_INSERT)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row);
    bytes += row.payload.byteLength;
  }
  if (current.length > 0) out.push(current);
  return out;
}

class MysqlStore extends GroupedStore {
  readonly kind = "mysql";

  constructor(
    readonly pool: mysql.Pool,
    readonly db: MySql2Database<typeof schema>,
    observer?: StoreObserver,
  ) {
    // Two commits in flight: while one waits for its fsync, the next group forms and goes.
    super({ maxUnits: 500, concurrency: 2, observer });
  }

  protected async executeUnits(units: WriteOp[][]): Promise<WriteOutcome[][]> {
    try {
      return await this.#execute(units);
    } catch (error) {
      // Another coordinator inserted one of the gids after our read, or two groups deadlocked:
      // run again, once.
      if (!isDuplicateKey(error) && !isDeadlock(error)) throw error;
      return this.#execute(units);
    }
  }

  /**
   * One group of units as one READ COMMITTED transaction on one connection. Inserts are built by
   * Drizzle (once per group); the per-transaction UPDATEs are prebuilt statements.
   */
  async #execute(units: WriteOp[][]): Promise<WriteOutcome[][]> {
    const keys = keysToRead(units);
    const conn = await this.pool.getConnection();
    let plan;
    try {
      await conn.beginTransaction();
      // Rows that gain branches are locked, so their status cannot change before the insert.
      const lock = units.some((ops) => ops.some((op) => op.kind === "addBranches"));
      const [statusRows] = keys.gids.length
        ? await conn.query<RowDataPacket[]>(`SELECT gid, status FROM transactions WHERE gid IN (?)${lock ? " FOR UPDATE" : ""}`, [keys.gids])
        : [[]];
      const [requestRows] = keys.requestIds.length
        ? await conn.query<RowDataPacket[]>("SELECT request_id, caller, method, gid, fingerprint, created_at FROM requests WHERE request_id IN (?)", [keys.requestIds])
        : [[]];
      const stored = {
        statuses: new Map(statusRows.map((r) => [String(r.gid), r.status as TransactionRecord["status"]])),
        requests: requestsByKey(
          requestRows.map((r) => ({
            requestId: String(r.request_id),
            caller: String(r.caller),
            method: String(r.method),
            gid: String(r.gid),
            fingerprint: String(r.fingerprint),
            createdAt: Number(r.created_at),
          })),
        ),
      };
      plan = planWrites(units, stored);
      const run = async (query: { toSQL(): { sql: string; params: unknown[] } }) => {
        const { sql: text, params } = query.toSQL();
        await conn.query(text, params);
      };
      for (const rows of chunks(plan.newTransactions, TRANSACTION_ROWS_PER_INSERT)) await run(this.db.insert(transactions).values(rows));
      for (const rows of chunksBySize(plan.newBranches.map(toBranchRow))) await run(this.db.insert(branches).values(rows));
      for (const rows of chunks(plan.newRequests, TRANSACTION_ROWS_PER_INSERT)) await run(this.db.insert(requests).values(rows));
      for (const rows of chunks(plan.newAdminActions, TRANSACTION_ROWS_PER_INSERT)) await run(this.db.insert(adminActions).values(rows));
      if (plan.ordered.every(({ op }) => op.kind !== "addBranches") && plan.ordered.length > 1) {
        // All the group's UPDATEs in one round trip; each keeps its own affected-rows count.
        const statements = plan.ordered.map(({ op }) => (op.kind === "transaction" ? updates.transaction(op) : updates.branches(op as Extract<WriteOp, { kind: "branches" }>)));
        const [results] = await conn.query<ResultSetHeader[]>(statements.map((st) => st.sql).join(";\n"), statements.flatMap((st) => st.params));
        plan.ordered.forEach(({ unit, index }, i) => (plan!.outcomes[unit]![index] = results[i]!.affectedRows > 0));
      } else {
        for (const { op, unit, index } of plan.ordered) {
          let matched = false;
          if (op.kind === "addBranches") {
            const status = stored.statuses.get(op.gid);
            if (status && op.statuses.includes(status)) {
              for (const rows of chunksBySize(op.branches.map(toBranchRow))) await run(this.db.insert(branches).values(rows));
              matched = true;
            }
          } else {
            const statement = op.kind === "transaction" ? updates.transaction(op) : updates.branches(op);
            const [result] = await conn.query<ResultSetHeader>(statement.sql, statement.params);
            matched = result.affectedRows > 0;
          }
          plan.outcomes[unit]![index] = matched;
        }
      }
      await conn.commit();
    } catch (error) {
      await conn.rollback().catch(() => undefined); // the connection may be gone; the error below says why
      throw error;
    } finally {
      conn.release();
    }
    return resolveStored(plan, (gid) => this.#getRow(gid));
  }

  async getRequest(caller: string, requestId: string): Promise<RequestRecord | undefined> {
    const [row] = await this.db.select().from(requests).where(and(eq(requests.requestId, requestId), eq(requests.caller, caller)));
    return row;
  }

  async getAdminActions(gid: string): Promise<AdminActionRecord[]> {
    const rows = await this.db.select().from(adminActions).where(eq(adminActions.gid, gid)).orderBy(asc(adminActions.at), asc(adminActions.id));
    return rows.map(toAdminActionRecord);
  }

  async getTransaction(gid: string): Promise<TransactionWithBranches | undefined> {
    const [transaction, branchRows] = await Promise.all([
      this.#getRow(gid),
      this.db.select().from(branches).where(eq(branches.gid, gid)),
    ]);
    if (!transaction) return undefined;
    return { transaction, branches: sortBranches(branchRows.map(toBranchRecord)) };
  }

  async listTransactions(query: ListQuery): Promise<ListPage> {
    const rows = await this.db
      .select()
      .from(transactions)
      .where(listWhere(transactions, query))
      .orderBy(...listOrder(transactions))
      .limit(query.limit + 1);
    return toListPage(rows.map(toTransactionRecord), query.limit);
  }

  /**
   * Three autocommit statements and no open transaction between them, so a coordinator paused
   * mid-claim holds no lock anyone else needs: find due rows no one has locked (SKIP LOCKED; the
   * locks end with the statement), take those still due and unleased in one compare-and-set
   * stamped with a token, then read back the rows carrying the token.
   */
  async claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedTransaction[]> {
    const dueAndFree = and(lte(transactions.nextAttemptAt, now), or(isNull(transactions.leaseUntil), lt(transactions.leaseUntil, now)));
    const candidates = await this.db
      .select({ gid: transactions.gid, owner: transactions.owner })
      .from(transactions)
      .where(dueAndFree)
      .orderBy(asc(transactions.nextAttemptAt))
      .limit(limit)
      .for("update", { skipLocked: true });
    if (candidates.length === 0) return [];
    const gids = candidates.map((r) => r.gid);
    const token = randomBytes(16).toString("hex");
    await this.db
      .update(transactions)
      .set({ owner, leaseUntil, claimToken: token, leaseGeneration: sql`${transactions.leaseGeneration} + 1` })
      .where(and(inArray(transactions.gid, gids), dueAndFree));
    const rows = await this.db.select().from(transactions).where(and(inArray(transactions.gid, gids), eq(transactions.claimToken, token)));
    // The owner the candidate read saw: a row that changed hands since then failed the CAS above.
    return withPreviousOwners(rows, candidates);
  }

  async backlog(now: number): Promise<BacklogStats> {
    const [row] = await this.db.select(backlogColumns(transactions, now)).from(transactions).where(unfinishedRows(transactions));
    return toBacklogStats(row);
  }

  async renewLeases(owner: string, leases: readonly HeldLease[], leaseUntil: number): Promise<string[]> {
    if (leases.length === 0) return [];
    const generations = new Map(leases.map((l) => [l.gid, l.generation]));
    const held = and(inArray(transactions.gid, [...generations.keys()]), eq(transactions.owner, owner));
    // Two renewals of one coordinator may cross (the periodic one and one before a call): a lease
    // only ever grows, and a row still ours with at least this lease counts as renewed.
    await this.db
      .update(transactions)
      .set({ leaseUntil: sql`GREATEST(COALESCE(${transactions.leaseUntil}, 0), ${leaseUntil})` })
      .where(held);
    const rows = await this.db
      .select({ gid: transactions.gid, generation: transactions.leaseGeneration })
      .from(transactions)
      .where(and(held, gte(transactions.leaseUntil, leaseUntil)));
    // A row taken again since (a higher generation, even under the same owner id) is not ours.
    return rows.filter((r) => generations.get(r.gid) === r.generation).map((r) => r.gid);
  }

  async deleteFinished(finishedBefore: number, limit: number): Promise<DeletedRows> {
    const finished = "finished_at < ? AND status IN ('succeeded', 'failed')";
    // Candidates by the finished_at index without locks; then, in a short transaction, lock those
    // still there (row locks in key order, so coordinators running this at once wait for each
    // other instead of deadlocking, and the later one finds nothing) and delete them with every
    // row that names them.
    const [candidates] = await this.pool.query<RowDataPacket[]>(
      // Not the status index, which would sort every finished row: this one is already in order.
      `SELECT gid FROM transactions FORCE INDEX (transactions_finished_idx) WHERE ${finished} ORDER BY finished_at, gid LIMIT ?`,
      [finishedBefore, limit],
    );
    if (candidates.length === 0) return { transactions: 0, branches: 0, requests: 0, adminActions: 0 };
    const gids = candidates.map((r) => String(r.gid)).sort();
    const attempt = async (): Promise<DeletedRows> => {
      const conn = await this.pool.getConnection();
      try {
        await conn.beginTransaction();
        const [locked] = await conn.query<RowDataPacket[]>(`SELECT gid FROM transactions WHERE gid IN (?) AND ${finished} ORDER BY gid FOR UPDATE`, [gids, finishedBefore]);
        let deleted: DeletedRows = { transactions: 0, branches: 0, requests: 0, adminActions: 0 };
        if (locked.length > 0) {
          const mine = locked.map((r) => String(r.gid));
          const tables = ["branches", "requests", "admin_actions", "transactions"];
          const [results] = await conn.query<ResultSetHeader[]>(tables.map((t) => `DELETE FROM ${t} WHERE gid IN (?)`).join(";\n"), tables.map(() => mine));
          const [branchRows, requestRows, actionRows, transactionRows] = results.map((r) => r.affectedRows);
          deleted = { transactions: transactionRows!, branches: branchRows!, requests: requestRows!, adminActions: actionRows! };
        }
        await conn.commit();
        return deleted;
      } catch (error) {
        await conn.rollback().catch(() => undefined); // the connection may be gone; the error thrown says why
        throw error;
      } finally {
        conn.release();
      }
    };
    try {
      return await attempt();
    } catch (error) {
      if (!isDeadlock(error)) throw error;
      return attempt();
    }
  }

  async ping(): Promise<void> {
    await this.pool.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  async #getRow(gid: string): Promise<TransactionRecord | undefined> {
    const [row] = await this.db.select().from(transactions).where(eq(transactions.gid, gid));
    return row ? toTransactionRecord(row) : undefined;
  }
}
