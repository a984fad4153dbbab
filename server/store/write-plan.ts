import { requestKey, type AdminActionRecord, type BranchRecord, type CreateResult, type RequestRecord, type TransactionRecord } from "./records.js";
import type { RequestResult, WriteOp, WriteOutcome } from "./write-ops.js";

type OrderedOp = Exclude<WriteOp, { kind: "create" } | { kind: "request" } | { kind: "adminAction" }>;

/**
 * How a group of units becomes statements: every create and request first (one multi-row insert
 * per table, skipping keys that exist or repeat), then the other ops in unit order. Backends run
 * the plan inside one database transaction and fill in `outcomes` for the ordered ops.
 */
export interface WritePlan {
  newTransactions: TransactionRecord[];
  newBranches: BranchRecord[];
  newRequests: RequestRecord[];
  newAdminActions: AdminActionRecord[];
  ordered: { op: OrderedOp; unit: number; index: number }[];
  outcomes: WriteOutcome[][];
  /**
   * Creates whose gid was already stored: their outcome is `{ created: false }` and the backend
   * fills in `existing` (the stored row) before answering.
   */
  stored: { unit: number; index: number; gid: string }[];
}

/** What the backend read before planning: the status of stored gids, and known requests. */
export interface StoredKeys {
  statuses: ReadonlyMap<string, TransactionRecord["status"]>;
  /** By requestKey(). */
  requests: ReadonlyMap<string, RequestRecord>;
}

/** Known requests by requestKey(), from rows read by request_id (other callers' rows included). */
export const requestsByKey = (rows: readonly RequestRecord[]) => new Map(rows.map((r) => [requestKey(r), r]));

export function keysToRead(units: readonly WriteOp[][]) {
  const gids = new Set<string>();
  const requestIds = new Set<string>();
  for (const op of units.flat()) {
    if (op.kind === "create" || op.kind === "addBranches") gids.add(op.kind === "create" ? op.transaction.gid : op.gid);
    if (op.kind === "request") requestIds.add(op.request.requestId);
  }
  return { gids: [...gids], requestIds: [...requestIds] };
}

export function planWrites(units: readonly WriteOp[][], stored: StoredKeys): WritePlan {
  const plan: WritePlan = {
    newTransactions: [],
    newBranches: [],
    newRequests: [],
    newAdminActions: [],
    ordered: [],
    outcomes: units.map((ops) => ops.map(() => false)),
    stored: [],
  };
  const txInBatch = new Map<string, TransactionRecord>();
  const requestsInBatch = new Map<string, RequestRecord>();
  units.forEach((ops, unit) =>
    ops.forEach((op, index) => {
      switch (op.kind) {
        case "create": {
          const gid = op.transaction.gid;
          if (stored.statuses.has(gid)) {
            plan.stored.push({ unit, index, gid });
            return;
          }
          const inBatch = txInBatch.get(gid);
          if (inBatch) {
            plan.outcomes[unit]![index] = { created: false, existing: inBatch } satisfies CreateResult;
            return;
          }
          txInBatch.set(gid, op.transaction);
          plan.newTransactions.push(op.transaction);
          plan.newBranches.push(...op.branches);
          plan.outcomes[unit]![index] = { created: true } satisfies CreateResult;
          return;
        }
        case "request": {
          const id = requestKey(op.request);
          const found = stored.requests.get(id) ?? requestsInBatch.get(id);
          if (found) {
            plan.outcomes[unit]![index] = { created: false, existing: found } satisfies RequestResult;
            return;
          }
          requestsInBatch.set(id, op.request);
          plan.newRequests.push(op.request);
          plan.outcomes[unit]![index] = { created: true } satisfies RequestResult;
          return;
        }
        case "adminAction":
          plan.newAdminActions.push(op.action);
          plan.outcomes[unit]![index] = true;
          return;
        default:
          plan.ordered.push({ op, unit, index });
      }
    }),
  );
  return plan;
}

/** Fills in the stored rows of creates that found their gid taken. */
export async function resolveStored(plan: WritePlan, read: (gid: string) => Promise<TransactionRecord | undefined>): Promise<WriteOutcome[][]> {
  for (const { unit, index, gid } of plan.stored) {
    const existing = await read(gid);
    // Deleted in between (retention): report it as existing anyway, the caller retries or not.
    if (!existing) throw new Error(`transaction ${gid} vanished while being created again`);
    plan.outcomes[unit]![index] = { created: false, existing } satisfies CreateResult;
  }
  return plan.outcomes;
}
