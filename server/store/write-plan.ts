import type { BranchRecord, CreateResult, TransactionRecord } from "./records.js";
import type { WriteOp, WriteOutcome } from "./write-ops.js";

type UpdateOp = Exclude<WriteOp, { kind: "create" }>;

/**
 * How a group of units becomes statements: every create first (one multi-row insert per table,
 * skipping gids that exist or repeat), then every update in unit order. Backends run the plan
 * inside one database transaction and fill in `outcomes`.
 */
export interface WritePlan {
  newTransactions: TransactionRecord[];
  newBranches: BranchRecord[];
  updates: { op: UpdateOp; unit: number; index: number }[];
  outcomes: WriteOutcome[][];
}

export function createGids(units: readonly WriteOp[][]): string[] {
  return units.flatMap((ops) => ops.flatMap((op) => (op.kind === "create" ? [op.transaction.gid] : [])));
}

/** `existing`: rows already stored for the gids of the creates. */
export function planWrites(units: readonly WriteOp[][], existing: ReadonlyMap<string, TransactionRecord>): WritePlan {
  const plan: WritePlan = { newTransactions: [], newBranches: [], updates: [], outcomes: units.map((ops) => ops.map(() => false)) };
  const inBatch = new Map<string, TransactionRecord>();
  units.forEach((ops, unit) =>
    ops.forEach((op, index) => {
      if (op.kind !== "create") {
        plan.updates.push({ op, unit, index });
        return;
      }
      const gid = op.transaction.gid;
      const found = existing.get(gid) ?? inBatch.get(gid);
      if (found) {
        plan.outcomes[unit]![index] = { created: false, existing: found } satisfies CreateResult;
        return;
      }
      inBatch.set(gid, op.transaction);
      plan.newTransactions.push(op.transaction);
      plan.newBranches.push(...op.branches);
      plan.outcomes[unit]![index] = { created: true } satisfies CreateResult;
    }),
  );
  return plan;
}
