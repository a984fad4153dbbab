import { inArray, sql, type AnyColumn, type SQL } from "drizzle-orm";
import { TRANSACTION_STATUSES, isFinal, type BacklogStats } from "./records.js";

// Store.backlog, the same SQL for both dialects (the column names are shared).

interface BacklogColumns {
  status: AnyColumn;
  stalled: AnyColumn;
  nextAttemptAt: AnyColumn;
  leaseUntil: AnyColumn;
}

const UNFINISHED = TRANSACTION_STATUSES.filter((s) => !isFinal(s));

/**
 * Only the rows not yet final, found through the (status, created_at) index: scraped every few
 * seconds, the query must cost what the backlog holds, never what the history holds.
 */
export const unfinishedRows = (t: BacklogColumns): SQL => inArray(t.status, UNFINISHED);

/** The aggregates of Store.backlog; "due" is exactly what claimDue would take at `now`. */
export function backlogColumns(t: BacklogColumns, now: number) {
  const dueNow = sql`(${t.nextAttemptAt} <= ${now} and (${t.leaseUntil} is null or ${t.leaseUntil} < ${now}))`;
  return {
    unfinished: sql<unknown>`count(*)`,
    due: sql<unknown>`sum(case when ${dueNow} then 1 else 0 end)`,
    oldestDueAt: sql<unknown>`min(case when ${dueNow} then ${t.nextAttemptAt} end)`,
    stalled: sql<unknown>`sum(case when ${t.stalled} = 1 then 1 else 0 end)`,
  };
}

/** MySQL answers SUM as a decimal string, SQLite as a number; an empty table sums to NULL. */
export function toBacklogStats(row: { unfinished: unknown; due: unknown; oldestDueAt: unknown; stalled: unknown } | undefined): BacklogStats {
  const count = (value: unknown) => (value === null || value === undefined ? 0 : Number(value));
  return {
    unfinished: count(row?.unfinished),
    due: count(row?.due),
    oldestDueAt: row?.oldestDueAt === null || row?.oldestDueAt === undefined ? null : Number(row.oldestDueAt),
    stalled: count(row?.stalled),
  };
}
