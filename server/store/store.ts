import type { AdminActionRecord, BacklogStats, HeldLease, ClaimedTransaction, ListPage, ListQuery, RequestRecord, TransactionWithBranches } from "./records.js";
import type { WriteOp, WriteOutcome } from "./write-ops.js";

/**
 * The one storage contract of the coordinator. Every backend passes the same contract suite
 * (test/store/store.contract.ts). Every method resolves only after its change is committed.
 */
export interface Store {
  /** Which backend this is, for logs and health details. */
  readonly kind: "sqlite" | "mysql";

  /**
   * Apply `ops` atomically (creates first, then the rest in order), grouped with other callers'
   * writes into one database commit. One outcome per op (write-ops.ts): a create whose gid exists
   * writes nothing and returns the stored row; a compare-and-set or an addBranches whose
   * condition no longer holds is `false` (a lost race, never an error).
   */
  write(ops: WriteOp[]): Promise<WriteOutcome[]>;

  getTransaction(gid: string): Promise<TransactionWithBranches | undefined>;

  /** The request of `caller` that used `requestId`, if any (see the "request" write op). */
  getRequest(caller: string, requestId: string): Promise<RequestRecord | undefined>;

  listTransactions(query: ListQuery): Promise<ListPage>;

  /** What operators did to `gid`, oldest first. */
  getAdminActions(gid: string): Promise<AdminActionRecord[]>;

  /**
   * Claim up to `limit` transactions that are due (`nextAttemptAt <= now`) and not leased by a
   * live owner, setting `owner` and `leaseUntil`. Two callers never get the same row. Each row
   * says who held it before (`previousOwner`), so a takeover of another's expired lease is seen.
   */
  claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedTransaction[]>;

  /**
   * Counts over the unfinished transactions at `now`, for metrics: one query over the rows that
   * are not final, so its cost follows the backlog, not the history.
   */
  backlog(now: number): Promise<BacklogStats>;

  /** Extend the lease on rows `owner` still holds; returns the gids whose lease was extended. */
  renewLeases(owner: string, leases: readonly HeldLease[], leaseUntil: number): Promise<string[]>;

  /**
   * Retention: deletes up to `limit` finished transactions (SUCCEEDED or FAILED) that finished
   * before `finishedBefore`, oldest first, with their branches, request ids and admin actions, in
   * one database transaction. Never an unfinished one. Idempotent, so coordinators may run it at
   * once: a row is counted by whoever deleted it. Fewer than `limit` transactions means none are
   * left that old.
   */
  deleteFinished(finishedBefore: number, limit: number): Promise<DeletedRows>;

  /** Cheap round trip used by health checks. */
  ping(): Promise<void>;

  close(): Promise<void>;
}

/** What one retention batch removed, per table. */
export interface DeletedRows {
  transactions: number;
  branches: number;
  requests: number;
  adminActions: number;
}
