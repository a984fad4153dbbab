import { and, desc, eq, gte, inArray, lt, or, sql, type AnyColumn, type SQL } from "drizzle-orm";
import {
  ADMIN_ACTIONS,
  BRANCH_OPS,
  BRANCH_STATUSES,
  MODES,
  TRANSACTION_STATUSES,
  type AdminActionRecord,
  type ClaimedTransaction,
  type BranchRecord,
  type ListQuery,
  type TransactionRecord,
} from "./records.js";

// Both dialect schemas share column names and value shapes, so rows map to records the same way.

export class CorruptRowError extends Error {
  constructor(column: string, value: unknown) {
    super(`store row has an unexpected ${column}: ${JSON.stringify(value)}`);
    this.name = "CorruptRowError";
  }
}

function oneOf<T extends string>(allowed: readonly T[], column: string, value: string): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new CorruptRowError(column, value);
}

export interface TransactionRow extends Omit<TransactionRecord, "mode" | "status"> {
  mode: string;
  status: string;
  /** MySQL only: which claim statement took the row; not part of the record. */
  claimToken?: string | null;
}

export interface BranchRow extends Omit<BranchRecord, "op" | "status" | "after" | "payload"> {
  op: string;
  status: string;
  after: string;
  payload: Uint8Array;
}

export function toTransactionRecord({ claimToken: _claimToken, ...row }: TransactionRow): TransactionRecord {
  return {
    ...row,
    stalled: Boolean(row.stalled),
    mode: oneOf(MODES, "mode", row.mode),
    status: oneOf(TRANSACTION_STATUSES, "status", row.status),
  };
}

export function toBranchRecord(row: BranchRow): BranchRecord {
  const after: unknown = JSON.parse(row.after);
  if (!Array.isArray(after) || !after.every((v) => typeof v === "string")) {
    throw new CorruptRowError("after", row.after);
  }
  return {
    ...row,
    payload: new Uint8Array(row.payload),
    after,
    op: oneOf(BRANCH_OPS, "op", row.op),
    status: oneOf(BRANCH_STATUSES, "status", row.status),
  };
}

export function toBranchRow(record: BranchRecord): Omit<BranchRow, "payload"> & { payload: Buffer } {
  return {
    ...record,
    payload: Buffer.from(record.payload.buffer, record.payload.byteOffset, record.payload.byteLength),
    after: JSON.stringify(record.after),
  };
}

/** Orders branches as the engine runs them: by position, then action before its undo. */
export function sortBranches(branches: BranchRecord[]): BranchRecord[] {
  return branches.sort((a, b) => a.seq - b.seq || BRANCH_OPS.indexOf(a.op) - BRANCH_OPS.indexOf(b.op));
}

interface ListColumns {
  gid: AnyColumn;
  status: AnyColumn;
  mode: AnyColumn;
  createdAt: AnyColumn;
  stalled: AnyColumn;
}

/** Gids are at most this long (docs/architecture.md, "Limits"; varchar(128) on MySQL). */
const GID_CHARS = 128;

/**
 * Rows whose gid starts with `prefix`, compared literally, whatever the prefix holds.
 *
 * LIKE alone is not literal: it folds ASCII case in SQLite and under MySQL's default _ci
 * collations (accents too), and SQLite refuses patterns over 50,000 bytes ("LIKE or GLOB pattern
 * too complex"). So LIKE only narrows (MySQL turns it into an index range) on the prefix's first
 * GID_CHARS characters, which every match also starts with, with "%", "_" and the escape
 * character escaped; comparing the first characters' UTF-8 bytes, hex-encoded, decides. "!" is
 * the escape character because backslash means different things in SQLite and MySQL string
 * literals. substr counts characters and hex encodes UTF-8 in both dialects.
 */
function startsWith(column: AnyColumn, prefix: string): SQL {
  const chars = Array.from(prefix);
  const narrowing = chars.slice(0, GID_CHARS).join("");
  const pattern = `${narrowing.replace(/[!%_]/g, (c) => `!${c}`)}%`;
  const bytes = Buffer.from(prefix, "utf8").toString("hex").toUpperCase();
  return sql`(${column} like ${pattern} escape '!' and hex(substr(${column}, 1, ${chars.length})) = ${bytes})`;
}

export function listWhere(t: ListColumns, query: ListQuery): SQL | undefined {
  const conditions: (SQL | undefined)[] = [];
  if (query.statuses.length > 0) conditions.push(inArray(t.status, query.statuses));
  if (query.modes.length > 0) conditions.push(inArray(t.mode, query.modes));
  if (query.createdAfter !== undefined) conditions.push(gte(t.createdAt, query.createdAfter));
  if (query.createdBefore !== undefined) conditions.push(lt(t.createdAt, query.createdBefore));
  if (query.gidPrefix) conditions.push(startsWith(t.gid, query.gidPrefix));
  if (query.stalledOnly) conditions.push(eq(t.stalled, true));
  if (query.after) {
    const { createdAt, gid } = query.after;
    conditions.push(or(lt(t.createdAt, createdAt), and(eq(t.createdAt, createdAt), lt(t.gid, gid))));
  }
  return and(...conditions);
}

export function listOrder(t: ListColumns): SQL[] {
  return [desc(t.createdAt), desc(t.gid)];
}

/** Fetches one row more than asked to learn whether another page follows. */
export function toListPage(rows: TransactionRecord[], limit: number) {
  const transactions = rows.slice(0, limit);
  const last = transactions.at(-1);
  return rows.length > limit && last
    ? { transactions, next: { createdAt: last.createdAt, gid: last.gid } }
    : { transactions };
}

export function toAdminActionRecord(row: Omit<AdminActionRecord, "action" | "op"> & { action: string; op: string }): AdminActionRecord {
  return {
    ...row,
    action: oneOf(ADMIN_ACTIONS, "action", row.action),
    op: row.op === "" ? "" : oneOf(BRANCH_OPS, "op", row.op),
  };
}

/** Claimed rows with the owner each had when the claim read it (a lease takeover when another). */
export function withPreviousOwners(rows: TransactionRow[], before: readonly { gid: string; owner: string | null }[]): ClaimedTransaction[] {
  const previous = new Map(before.map((r) => [r.gid, r.owner]));
  return rows.map((row) => ({ ...toTransactionRecord(row), previousOwner: previous.get(row.gid) ?? null }));
}
