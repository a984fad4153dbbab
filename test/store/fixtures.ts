import type { BranchChanges, BranchKey, BranchRecord, CreateResult, Store, TransactionRecord, TransactionStatus, WriteOp } from "../../server/store/index.js";

export function txRecord(gid: string, overrides: Partial<TransactionRecord> = {}): TransactionRecord {
  const now = overrides.createdAt ?? Date.now();
  return {
    gid,
    mode: "saga",
    status: "submitted",
    stalled: false,
    options: "{}",
    queryPrepared: "",
    traceparent: "",
    lastError: "",
    failedBranchId: "",
    failureReason: "",
    contentHash: "hash-" + gid,
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
    nextAttemptAt: null,
    deadlineAt: null,
    owner: null,
    leaseUntil: null,
    leaseGeneration: 0,
    ...overrides,
  };
}

export function branchRecord(gid: string, seq: number, op: BranchRecord["op"], overrides: Partial<BranchRecord> = {}): BranchRecord {
  return {
    gid,
    branchId: String(seq).padStart(2, "0"),
    op,
    seq,
    target: `http://127.0.0.1:9/${op}`,
    payload: new TextEncoder().encode(`{"n":${seq}}`),
    after: [],
    status: "pending",
    attempts: 0,
    lastError: "",
    updatedAt: Date.now(),
    ...overrides,
  };
}

// One-op writes, as the engine's units are made of them (the Store has only write()).

export async function createTx(store: Store, transaction: TransactionRecord, branches: BranchRecord[]): Promise<CreateResult> {
  const [outcome] = await store.write([{ kind: "create", transaction, branches }]);
  return outcome as CreateResult;
}

/** A compare-and-set, with a status change when `op` comes from the transition table. */
export async function casTx(store: Store, op: Extract<WriteOp, { kind: "transaction" }>): Promise<boolean> {
  const [outcome] = await store.write([op]);
  return outcome === true;
}

export async function updateBranch(store: Store, key: BranchKey, statuses: readonly TransactionStatus[], changes: BranchChanges): Promise<boolean> {
  const [outcome] = await store.write([{ kind: "branches", gid: key.gid, keys: [key], statuses, changes }]);
  return outcome === true;
}

export async function addBranches(store: Store, gid: string, statuses: readonly TransactionStatus[], branches: BranchRecord[]): Promise<boolean> {
  const [outcome] = await store.write([{ kind: "addBranches", gid, statuses, branches }]);
  return outcome === true;
}
