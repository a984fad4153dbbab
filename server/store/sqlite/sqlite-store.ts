import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Client, type InValue } from "@libsql/client";
import { and, asc, eq, inArray, isNotNull, isNull, lt, lte, or, sql } from "drizzle-orm";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import { migrate } from "drizzle-orm/libsql/migrator";
import { backlogColumns, toBacklogStats, unfinishedRows } from "../backlog-query.js";
import { chunks } from "../chunks.js";
import { GroupedStore } from "../grouped-store.js";
import { createUpdateStatements } from "../update-statements.js";
import type { AdminActionRecord, HeldLease, BacklogStats, ClaimedTransaction, ListPage, ListQuery, RequestRecord, TransactionWithBranches } from "../records.js";
import { listOrder, listWhere, sortBranches, toAdminActionRecord, toBranchRecord, toBranchRow, toListPage, toTransactionRecord, withPreviousOwners } from "../row-mapping.js";
import type { StoreObserver } from "../open-store.js";
import type { DeletedRows, Store } from "../store.js";
import type { WriteOp, WriteOutcome } from "../write-ops.js";
import { keysToRead, planWrites, requestsByKey, resolveStored } from "../write-plan.js";
import * as schema from "./schema.js";

const { transactions, branches, requests, adminActions } = schema;
const updates = createUpdateStatements(transactions, branches);
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
export async function openSqliteStore(url: string, observer?: StoreObserver): Promise<Store> {
  const path = filePath(url);
  if (path) mkdirSync(dirname(path), { recursive: true });
  // One connection: PRAGMAs are per connection, and SQLite has one writer anyway.
  const client = createClient({ url, concurrency: 1 });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute("PRAGMA synchronous = FULL");
  await client.execute("PRAGMA busy_timeout = 5000");
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder });
  return new SqliteStore(client, db, observer);
}

class SqliteStore extends GroupedStore {
  readonly kind = "sqlite";

  constructor(
    readonly client: Client,
    readonly db: LibSQLDatabase<typeof schema>,
    observer?: StoreObserver,
  ) {
    // One writer, and its commit blocks the event loop: one flush at a time, after a short linger
    // so the units of concurrent transactions can share the fsync.
    super({ maxUnits: 1000, concurrency: 1, lingerMs: 2, observer });
  }

  protected async executeUnits(units: WriteOp[][]): Promise<WriteOutcome[][]> {
    // This is the only writer (one flush at a time), so what is read here stays true until the
    // batch below commits.
    const keys = keysToRead(units);
    const [txRows, requestRows] = await Promise.all([
      keys.gids.length > 0 ? this.db.select().from(transactions).where(inArray(transactions.gid, keys.gids)) : [],
      keys.requestIds.length > 0 ? this.db.select().from(requests).where(inArray(requests.requestId, keys.requestIds)) : [],
    ]);
    const rows = new Map(txRows.map((r) => [r.gid, toTransactionRecord(r)]));
    const stored = {
      statuses: new Map([...rows.values()].map((r) => [r.gid, r.status])),
      requests: requestsByKey(requestRows),
    };
    const plan = planWrites(units, stored);
    const toStatement = (query: { toSQL(): { sql: string; params: unknown[] } }) => {
      const { sql: text, params } = query.toSQL();
      return { sql: text, args: params as InValue[] };
    };
    const inserts = [
      ...chunks(plan.newTransactions, TRANSACTION_ROWS_PER_INSERT).map((rows) => toStatement(this.db.insert(transactions).values(rows))),
      ...chunks(plan.newBranches.map(toBranchRow), BRANCH_ROWS_PER_INSERT).map((rows) => toStatement(this.db.insert(branches).values(rows))),
      ...chunks(plan.newRequests, TRANSACTION_ROWS_PER_INSERT).map((rows) => toStatement(this.db.insert(requests).values(rows))),
      ...chunks(plan.newAdminActions, TRANSACTION_ROWS_PER_INSERT).map((rows) => toStatement(this.db.insert(adminActions).values(rows))),
    ];
    const ordered = plan.ordered.map(({ op }) => {
      switch (op.kind) {
        case "transaction":
        case "branches": {
          const { sql: text, params } = op.kind === "transaction" ? updates.transaction(op) : updates.branches(op);
          return { sql: text, args: params };
        }
        case "addBranches": {
          const status = stored.statuses.get(op.gid);
          // Not allowed: a statement that changes nothing keeps results aligned with ops.
          if (!status || !op.statuses.includes(status) || op.branches.length === 0) return { sql: "SELECT 0", args: [] };
          return toStatement(this.db.insert(branches).values(op.branches.map(toBranchRow)));
        }
      }
    });
    const statements = [...inserts, ...ordered];
    const withStored = () => resolveStored(plan, async (gid) => rows.get(gid));
    if (statements.length === 0) return withStored();
    // One libsql batch is one SQLite transaction: one commit for every unit in the group.
    const results = await this.client.batch(statements, "write");
    plan.ordered.forEach(({ unit, index }, i) => {
      plan.outcomes[unit]![index] = results[inserts.length + i]!.rowsAffected > 0;
    });
    return withStored();
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

  async claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedTransaction[]> {
    const due = this.db
      .select({ gid: transactions.gid })
      .from(transactions)
      .where(and(lte(transactions.nextAttemptAt, now), or(isNull(transactions.leaseUntil), lt(transactions.leaseUntil, now))))
      .orderBy(asc(transactions.nextAttemptAt))
      .limit(limit);
    // One UPDATE … WHERE gid IN (due) RETURNING: the check and the claim are one statement.
    // RETURNING shows only new values, so the owners it replaces are read first, in the same
    // batch (one SQLite transaction: both see the same rows).
    const [before, rows] = await this.db.batch([
      this.db
        .select({ gid: transactions.gid, owner: transactions.owner })
        .from(transactions)
        .where(and(inArray(transactions.gid, due), isNotNull(transactions.owner))),
      this.db
        .update(transactions)
        .set({ owner, leaseUntil, leaseGeneration: sql`${transactions.leaseGeneration} + 1` })
        .where(and(inArray(transactions.gid, due), or(isNull(transactions.leaseUntil), lt(transactions.leaseUntil, now))))
        .returning(),
    ]);
    return withPreviousOwners(rows, before);
  }

  async backlog(now: number): Promise<BacklogStats> {
    const [row] = await this.db.select(backlogColumns(transactions, now)).from(transactions).where(unfinishedRows(transactions));
    return toBacklogStats(row);
  }

  async renewLeases(owner: string, leases: readonly HeldLease[], leaseUntil: number): Promise<string[]> {
    if (leases.length === 0) return [];
    const generations = new Map(leases.map((l) => [l.gid, l.generation]));
    const rows = await this.db
      .update(transactions)
      // A lease only ever grows, whichever of two crossing renewals lands last.
      .set({ leaseUntil: sql`max(coalesce(${transactions.leaseUntil}, 0), ${leaseUntil})` })
      .where(and(inArray(transactions.gid, [...generations.keys()]), eq(transactions.owner, owner)))
      .returning({ gid: transactions.gid, generation: transactions.leaseGeneration });
    // A row taken again since (a higher generation, even under the same owner id) is not ours.
    return rows.filter((r) => generations.get(r.gid) === r.generation).map((r) => r.gid);
  }

  async deleteFinished(finishedBefore: number, limit: number): Promise<DeletedRows> {
    // Each statement picks the same oldest rows again: one libsql batch is one transaction on the
    // only connection, so nothing changes between them, and final statuses never change back.
    // The planner would pick the status index and sort every finished row; this one is in order.
    const oldest = `SELECT gid FROM transactions INDEXED BY transactions_finished_idx WHERE finished_at < ? AND status IN ('succeeded', 'failed') ORDER BY finished_at, gid LIMIT ?`;
    const args = [finishedBefore, limit];
    const [branchRows, requestRows, actionRows, transactionRows] = await this.client.batch(
      ["branches", "requests", "admin_actions", "transactions"].map((table) => ({ sql: `DELETE FROM ${table} WHERE gid IN (${oldest})`, args })),
      "write",
    );
    return {
      transactions: transactionRows!.rowsAffected,
      branches: branchRows!.rowsAffected,
      requests: requestRows!.rowsAffected,
      adminActions: actionRows!.rowsAffected,
    };
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
