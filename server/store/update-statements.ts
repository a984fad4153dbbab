import { getTableColumns, getTableName, type Table } from "drizzle-orm";
import type { WriteOp } from "./write-ops.js";

/**
 * The two UPDATEs every transaction makes (status compare-and-set, branch progress), built as
 * plain parameterized SQL from the Drizzle schema's table and column names. They run for every
 * transaction, and the query builder's per-call cost showed up as a third of the coordinator's
 * CPU in profiles; both dialects accept this SQL (backquoted names, `?` parameters).
 */
export interface Statement {
  sql: string;
  params: (string | number | null)[];
}

type Value = string | number | boolean | null | undefined;

function columnNames(table: Table): Map<string, string> {
  return new Map(Object.entries(getTableColumns(table)).map(([key, column]) => [key, column.name]));
}

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");
const sqlValue = (v: Exclude<Value, undefined>) => (typeof v === "boolean" ? (v ? 1 : 0) : v);

export function createUpdateStatements(transactions: Table, branches: Table) {
  const txTable = getTableName(transactions);
  const branchTable = getTableName(branches);
  const txColumns = columnNames(transactions);
  const branchColumns = columnNames(branches);

  const set = (columns: Map<string, string>, changes: Record<string, Value>) => {
    const entries = Object.entries(changes).filter(([, v]) => v !== undefined) as [string, Exclude<Value, undefined>][];
    if (entries.length === 0) throw new Error("an UPDATE needs at least one change");
    return {
      sql: entries.map(([key]) => `\`${columns.get(key) ?? fail(key)}\` = ?`).join(", "),
      params: entries.map(([, v]) => sqlValue(v)),
    };
  };

  return {
    transaction(op: Extract<WriteOp, { kind: "transaction" }>): Statement {
      const assignments = set(txColumns, { ...op.changes, ...(op.transition ? { status: op.transition.to } : {}) } as Record<string, Value>);
      // Whoever takes the lease gets the next fencing value (records.ts, leaseGeneration).
      if (typeof op.changes.owner === "string") assignments.sql += ", `lease_generation` = `lease_generation` + 1";
      let where = "`gid` = ?";
      const params: Statement["params"] = [...assignments.params, op.gid];
      if (op.transition) {
        where += " AND `status` = ?";
        params.push(op.transition.from);
      }
      if (op.expect.statuses) {
        where += ` AND \`status\` IN (${placeholders(op.expect.statuses.length)})`;
        params.push(...op.expect.statuses);
      }
      if (op.expect.owner !== undefined) {
        where += " AND `owner` = ?";
        params.push(op.expect.owner);
      }
      if (op.expect.leaseGeneration !== undefined) {
        where += " AND `lease_generation` = ?";
        params.push(op.expect.leaseGeneration);
      }
      return { sql: `UPDATE \`${txTable}\` SET ${assignments.sql} WHERE ${where}`, params };
    },

    branches(op: Extract<WriteOp, { kind: "branches" }>): Statement {
      const assignments = set(branchColumns, op.changes as Record<string, Value>);
      const keys = op.keys.map(() => "(`branch_id` = ? AND `op` = ?)").join(" OR ");
      // Only pending operations change: a result (or a skip by an operator) is never overwritten,
      // e.g. by a coordinator that lost the lease and still reports what it saw.
      const sql =
        `UPDATE \`${branchTable}\` SET ${assignments.sql} WHERE \`gid\` = ? AND (${keys}) AND \`status\` = ? AND EXISTS ` +
        `(SELECT 1 FROM \`${txTable}\` WHERE \`gid\` = ? AND \`status\` IN (${placeholders(op.statuses.length)}))`;
      return { sql, params: [...assignments.params, op.gid, ...op.keys.flatMap((k) => [k.branchId, k.op]), "pending", op.gid, ...op.statuses] };
    },
  };
}

function fail(key: string): never {
  throw new Error(`no column for "${key}"`);
}
