import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client, type ResultSet } from "@libsql/client";
import { and, asc, eq, inArray, isNull, lt, lte, or } from "drizzle-orm";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import { chunks } from "../chunks.js";
import { branchesGuard, transactionCas } from "../conditions.js";
import { GroupedStore } from "../grouped-store.js";
import type { BranchRecord, ListPage, ListQuery, TransactionRecord, TransactionStatus, TransactionWithBranches } from "../records.js";
import { listOrder, listWhere, sortBranches, toBranchRecord, toBranchRow, toListPage, toTransactionRecord } from "../row-mapping.js";
import type { Store } from "../store.js";
import type { WriteOp, WriteOutcome } from "../write-ops.js";
import { createGids, planWrites } from "../write-plan.js";
import * as schema from "./schema.js";

const { transactions, branches } = schema;
const migrationsFolder = join(dirname(fileURLToPath(import.meta.url)), "migrations");

/** SQLite allows 32766 bound parameters per statement; a branch row binds 11. */
const BRANCH_ROWS_PER_INSERT = 2000;
const TRANSACTION_ROWS_PER_INSERT = 1500;

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

class SqliteStore extends GroupedStore {
  readonly kind = "sqlite";

  constructor(
    readonly client: Client,
    readonly db: LibSQLDatabase<typeof schema>,
  ) {
    // One writer, and its commit blocks the event loop: one flush at a time, after a short linger
    // so the units of concurrent transactions can share the fsync.
    super({ maxUnits: 1000, concurrency: 1, lingerMs: 2 });
  }

  protected async executeUnits(units: WriteOp[][]): Promise<WriteOutcome[][]> {
    const gids = createGids(units);
    const existing = new Map<string, TransactionRecord>();
    if (gids.length > 0) {
      const rows = await this.db.select().from(transactions).where(inArray(transactions.gid, gids));
      for (const row of rows) existing.set(row.gid, toTransactionRecord(row));
    }
    const plan = planWrites(units, existing);
    const inserts = [
      ...chunks(plan.newTransactions, TRANSACTION_ROWS_PER_INSERT).map((rows) => this.db.insert(transactions).values(rows)),
      ...chunks(plan.newBranches.map(toBranchRow), BRANCH_ROWS_PER_INSERT).map((rows) => this.db.insert(branches).values(rows)),
    ];
    const updates = plan.updates.map(({ op }) =>
      op.kind === "transaction"
        ? this.db.update(transactions).set(op.changes).where(transactionCas(transactions, op.gid, op.expect))
        : this.db.update(branches).set(op.changes).where(branchesGuard(branches, transactions, op)),
    );
    const statements = [...inserts, ...updates];
    if (statements.length === 0) return plan.outcomes;
    // One libsql batch is one SQLite transaction: one commit for every unit in the group.
    const results = (await this.db.batch(statements as [(typeof statements)[number], ...typeof statements])) as ResultSet[];
    plan.updates.forEach(({ unit, index }, i) => {
      plan.outcomes[unit]![index] = results[inserts.length + i]!.rowsAffected > 0;
    });
    return plan.outcomes;
  }

  async addBranches(gid: string, statuses: readonly TransactionStatus[], newBranches: BranchRecord[]): Promise<boolean> {
    // Through the group commit so it is ordered with every other write of this single writer.
    const [touched] = await this.write([{ kind: "transaction", gid, expect: { statuses }, changes: { updatedAt: Date.now() } }]);
    if (touched !== true) return false;
    await this.db.insert(branches).values(newBranches.map(toBranchRow));
    return true;
  }

  async getTransaction(gid: string): Promise<TransactionWithBranches | undefined> {
    const [rows, branchRows] = await Promise.all([
      this.db.select().from(transactions).where(eq(transactions.gid, gid)),
      this.db.select().from(branches).where(eq(branches.gid, gid)),
    ]);
    const row = rows[0];
    if (!row) return undefined;
    return { transaction: toTransactionRecord(row), branches: sortBranches(branchRows.map(toBranchRecord)) };
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

  async claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<TransactionRecord[]> {
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
  }

  async renewLeases(owner: string, gids: readonly string[], leaseUntil: number): Promise<string[]> {
    if (gids.length === 0) return [];
    const rows = await this.db
      .update(transactions)
      .set({ leaseUntil })
      .where(and(inArray(transactions.gid, [...gids]), eq(transactions.owner, owner)))
      .returning({ gid: transactions.gid });
    return rows.map((r) => r.gid);
  }

  async ping(): Promise<void> {
    await this.client.execute("SELECT 1");
  }

  async close(): Promise<void> {
    // Let queued writes land before the connection goes away.
    await this.write([]);
    this.client.close();
  }
}
