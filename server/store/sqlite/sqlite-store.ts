import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "@libsql/client";
import { and, asc, eq, inArray, isNull, lt, lte, or, sql } from "drizzle-orm";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
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
import { chunks } from "../chunks.js";
import { createSerialQueue } from "../serial-queue.js";
import type { Store } from "../store.js";
import * as schema from "./schema.js";

const { transactions, branches } = schema;
const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), "migrations");

/** Where the database file lives, for `file:` URLs; undefined for in-memory databases. */
function filePath(url: string): string | undefined {
  const path = url.replace(/^file:(\/\/)?/, "");
  return path === ":memory:" || path === "" ? undefined : path;
}

/**
 * Opens the embedded store: one SQLite file, one connection, WAL journal and synchronous=FULL so
 * an acknowledged write survives power loss. One coordinator per file.
 */
export async function openSqliteStore(url: string): Promise<Store> {
  const path = filePath(url);
  if (path) mkdirSync(dirname(path), { recursive: true });
  // One connection: PRAGMAs are per connection, and SQLite has one writer anyway.
  const client = createClient({ url, concurrency: 1 });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute("PRAGMA synchronous = FULL");
  await client.execute("PRAGMA busy_timeout = 5000");
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder });
  return new SqliteStore(client, db);
}

class SqliteStore implements Store {
  readonly kind = "sqlite";
  readonly #write = createSerialQueue();

  constructor(
    readonly client: Client,
    readonly db: LibSQLDatabase<typeof schema>,
  ) {}

  createTransaction(transaction: TransactionRecord, newBranches: BranchRecord[]): Promise<CreateResult> {
    return this.#write(async () => {
      const existing = await this.#getRow(transaction.gid);
      if (existing) return { created: false, existing };
      // The queue makes check-then-insert atomic in-process; the batch makes it atomic on disk.
      await this.db.batch([
        this.db.insert(transactions).values(transaction),
        ...chunks(newBranches.map(toBranchRow), 200).map((rows) => this.db.insert(branches).values(rows)),
      ]);
      return { created: true };
    });
  }

  addBranches(gid: string, statuses: readonly TransactionStatus[], newBranches: BranchRecord[]): Promise<boolean> {
    return this.#write(async () => {
      const row = await this.#getRow(gid);
      if (!row || !statuses.includes(row.status)) return false;
      await this.db.batch([
        this.db.insert(branches).values(newBranches.map(toBranchRow)),
        this.db.update(transactions).set({ updatedAt: Date.now() }).where(eq(transactions.gid, gid)),
      ]);
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

  updateTransaction(gid: string, expect: TransactionExpectation, changes: TransactionChanges): Promise<boolean> {
    return this.#write(async () => {
      const result = await this.db
        .update(transactions)
        .set(changes)
        .where(
          and(
            eq(transactions.gid, gid),
            expect.statuses ? inArray(transactions.status, [...expect.statuses]) : undefined,
            expect.owner !== undefined ? eq(transactions.owner, expect.owner) : undefined,
          ),
        );
      return result.rowsAffected > 0;
    });
  }

  updateBranch(key: BranchKey, statuses: readonly TransactionStatus[], changes: BranchChanges): Promise<boolean> {
    return this.#write(async () => {
      const result = await this.db
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
      return result.rowsAffected > 0;
    });
  }

  claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<TransactionRecord[]> {
    return this.#write(async () => {
      const due = this.db
        .select({ gid: transactions.gid })
        .from(transactions)
        .where(and(lte(transactions.nextAttemptAt, now), or(isNull(transactions.leaseUntil), lt(transactions.leaseUntil, now))))
        .orderBy(asc(transactions.nextAttemptAt))
        .limit(limit);
      // One UPDATE … WHERE gid IN (due) RETURNING: the check and the claim are one statement.
      const rows = await this.db
        .update(transactions)
        .set({ owner, leaseUntil })
        .where(and(inArray(transactions.gid, due), or(isNull(transactions.leaseUntil), lt(transactions.leaseUntil, now))))
        .returning();
      return rows.map(toTransactionRecord);
    });
  }

  renewLeases(owner: string, gids: readonly string[], leaseUntil: number): Promise<string[]> {
    if (gids.length === 0) return Promise.resolve([]);
    return this.#write(async () => {
      const rows = await this.db
        .update(transactions)
        .set({ leaseUntil })
        .where(and(inArray(transactions.gid, [...gids]), eq(transactions.owner, owner)))
        .returning({ gid: transactions.gid });
      return rows.map((r) => r.gid);
    });
  }

  async ping(): Promise<void> {
    await this.client.execute("SELECT 1");
  }

  async close(): Promise<void> {
    // Let queued writes land before the connection goes away.
    await this.#write(async () => this.client.close());
  }

  async #getRow(gid: string): Promise<TransactionRecord | undefined> {
    const [row] = await this.db.select().from(transactions).where(eq(transactions.gid, gid));
    return row ? toTransactionRecord(row) : undefined;
  }
}
