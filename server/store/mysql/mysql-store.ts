import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { and, asc, eq, inArray, isNull, lt, lte, or, sql } from "drizzle-orm";
import { drizzle, type MySql2Database } from "drizzle-orm/mysql2";
import { migrate } from "drizzle-orm/mysql2/migrator";
import mysql from "mysql2/promise";
import { chunks } from "../chunks.js";
import type {
  BranchChanges,
  BranchKey,
  BranchRecord,
  CreateResult,
  ListPage,
  ListQuery,
  TransactionChanges,
  TransactionExpectation,
  TransactionRecord,
  TransactionStatus,
  TransactionWithBranches,
} from "../records.js";
import {
  listOrder,
  listWhere,
  sortBranches,
  toBranchRecord,
  toBranchRow,
  toListPage,
  toTransactionRecord,
} from "../row-mapping.js";
import type { Store } from "../store.js";
import * as schema from "./schema.js";

const { transactions, branches } = schema;
const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), "migrations");

export interface MysqlStoreOptions {
  /** Connections in the pool. */
  poolSize: number;
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
  });
  const db = drizzle(pool, { schema, mode: "default" });
  await migrateUnderLock(pool, db);
  return new MysqlStore(pool, db);
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

function isDuplicateKey(error: unknown): boolean {
  const cause = error instanceof Error && "cause" in error ? error.cause : undefined;
  return [error, cause].some((e) => typeof e === "object" && e !== null && "errno" in e && e.errno === ER_DUP_ENTRY);
}

/** Rows per INSERT; payloads are at most 1 MiB by default, so this stays under max_allowed_packet. */
const BRANCH_ROWS_PER_INSERT = 16;

class MysqlStore implements Store {
  readonly kind = "mysql";

  constructor(
    readonly pool: mysql.Pool,
    readonly db: MySql2Database<typeof schema>,
  ) {}

  async createTransaction(transaction: TransactionRecord, newBranches: BranchRecord[]): Promise<CreateResult> {
    try {
      await this.db.transaction(async (tx) => {
        await tx.insert(transactions).values(transaction);
        for (const rows of chunks(newBranches.map(toBranchRow), BRANCH_ROWS_PER_INSERT)) {
          await tx.insert(branches).values(rows);
        }
      });
      return { created: true };
    } catch (error) {
      if (!isDuplicateKey(error)) throw error;
      const existing = await this.#getRow(transaction.gid);
      // Deleted between the failed insert and this read: report the conflict, not a phantom.
      if (!existing) throw error;
      return { created: false, existing };
    }
  }

  async addBranches(gid: string, statuses: readonly TransactionStatus[], newBranches: BranchRecord[]): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const [row] = await tx
        .select({ status: transactions.status })
        .from(transactions)
        .where(eq(transactions.gid, gid))
        .for("update");
      if (!row || !(statuses as readonly string[]).includes(row.status)) return false;
      for (const rows of chunks(newBranches.map(toBranchRow), BRANCH_ROWS_PER_INSERT)) {
        await tx.insert(branches).values(rows);
      }
      await tx.update(transactions).set({ updatedAt: Date.now() }).where(eq(transactions.gid, gid));
      return true;
    });
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

  async updateTransaction(gid: string, expect: TransactionExpectation, changes: TransactionChanges): Promise<boolean> {
    const [result] = await this.db
      .update(transactions)
      .set(changes)
      .where(
        and(
          eq(transactions.gid, gid),
          expect.statuses ? inArray(transactions.status, [...expect.statuses]) : undefined,
          expect.owner !== undefined ? eq(transactions.owner, expect.owner) : undefined,
        ),
      );
    return result.affectedRows > 0;
  }

  async updateBranch(key: BranchKey, statuses: readonly TransactionStatus[], changes: BranchChanges): Promise<boolean> {
    const [result] = await this.db
      .update(branches)
      .set(changes)
      .where(
        and(
          eq(branches.gid, key.gid),
          eq(branches.branchId, key.branchId),
          eq(branches.op, key.op),
          sql`exists (select 1 from ${transactions} where ${transactions.gid} = ${key.gid} and ${inArray(transactions.status, [...statuses])})`,
        ),
      );
    return result.affectedRows > 0;
  }

  claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<TransactionRecord[]> {
    return this.db.transaction(
      async (tx) => {
        const due = await tx
          .select({ gid: transactions.gid })
          .from(transactions)
          .where(and(lte(transactions.nextAttemptAt, now), or(isNull(transactions.leaseUntil), lt(transactions.leaseUntil, now))))
          .orderBy(asc(transactions.nextAttemptAt))
          .limit(limit)
          .for("update", { skipLocked: true });
        if (due.length === 0) return [];
        const gids = due.map((r) => r.gid);
        await tx.update(transactions).set({ owner, leaseUntil }).where(inArray(transactions.gid, gids));
        const rows = await tx.select().from(transactions).where(inArray(transactions.gid, gids));
        return rows.map(toTransactionRecord);
      },
      { isolationLevel: "read committed" },
    );
  }

  async renewLeases(owner: string, gids: readonly string[], leaseUntil: number): Promise<string[]> {
    if (gids.length === 0) return [];
    const held = and(inArray(transactions.gid, [...gids]), eq(transactions.owner, owner));
    await this.db.update(transactions).set({ leaseUntil }).where(held);
    const rows = await this.db.select({ gid: transactions.gid }).from(transactions).where(and(held, eq(transactions.leaseUntil, leaseUntil)));
    return rows.map((r) => r.gid);
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
