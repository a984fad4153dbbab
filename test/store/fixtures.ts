import type { BranchRecord, TransactionRecord } from "../../server/store/index.js";

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
