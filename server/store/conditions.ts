import { and, eq, inArray, or, sql, type AnyColumn, type SQL, type Table } from "drizzle-orm";
import type { TransactionExpectation } from "./records.js";
import type { WriteOp } from "./write-ops.js";

// WHERE clauses shared by both dialects (their schemas have the same columns).

interface TransactionColumns {
  gid: AnyColumn;
  status: AnyColumn;
  owner: AnyColumn;
}

interface BranchColumns {
  gid: AnyColumn;
  branchId: AnyColumn;
  op: AnyColumn;
}

/** The compare-and-set condition of a transaction update. */
export function transactionCas(t: TransactionColumns, gid: string, expect: TransactionExpectation): SQL | undefined {
  return and(
    eq(t.gid, gid),
    expect.statuses ? inArray(t.status, [...expect.statuses]) : undefined,
    expect.owner !== undefined ? eq(t.owner, expect.owner) : undefined,
  );
}

/** The branch operations of a "branches" op, while their transaction is in an allowed status. */
export function branchesGuard(
  b: BranchColumns,
  transactions: Table & TransactionColumns,
  op: Extract<WriteOp, { kind: "branches" }>,
): SQL | undefined {
  return and(
    eq(b.gid, op.gid),
    or(...op.keys.map((k) => and(eq(b.branchId, k.branchId), eq(b.op, k.op)))),
    sql`exists (select 1 from ${transactions} where ${transactions.gid} = ${op.gid} and ${inArray(transactions.status, [...op.statuses])})`,
  );
}
