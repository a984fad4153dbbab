import type {
  BranchChanges,
  BranchKey,
  BranchRecord,
  CreateResult,
  ListPage,
  ListQuery,
  TransactionChanges,
  TransactionExpectation,
  TransactionRecord,
  TransactionStatus,
  TransactionWithBranches,
  RequestRecord,
} from "./records.js";
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
   * writes into one database commit. One outcome per op.
   */
  write(ops: WriteOp[]): Promise<WriteOutcome[]>;

  /**
   * Create a transaction and all its branches in one database transaction. When the gid already
   * exists nothing is written and the existing row is returned, so the caller can tell a retry
   * (same content hash) from a conflict.
   */
  createTransaction(transaction: TransactionRecord, branches: BranchRecord[]): Promise<CreateResult>;

  /** Add branches to an existing transaction, only while it is in one of `statuses`. */
  addBranches(gid: string, statuses: readonly TransactionStatus[], branches: BranchRecord[]): Promise<boolean>;

  getTransaction(gid: string): Promise<TransactionWithBranches | undefined>;

  /** The request of `caller` that used `requestId`, if any (see the "request" write op). */
  getRequest(caller: string, requestId: string): Promise<RequestRecord | undefined>;

  listTransactions(query: ListQuery): Promise<ListPage>;

  /**
   * Compare-and-set: apply `changes` only if the row still matches `expect`. Resolves false when
   * the row is gone or no longer matches (a lost race, never an error).
   */
  updateTransaction(gid: string, expect: TransactionExpectation, changes: TransactionChanges): Promise<boolean>;

  /**
   * Update one branch operation, only while its transaction is in one of `statuses`, so a branch
   * result cannot land after the transaction moved on.
   */
  updateBranch(key: BranchKey, statuses: readonly TransactionStatus[], changes: BranchChanges): Promise<boolean>;

  /**
   * Claim up to `limit` transactions that are due (`nextAttemptAt <= now`) and not leased by a
   * live owner, setting `owner` and `leaseUntil`. Two callers never get the same row.
   */
  claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<TransactionRecord[]>;

  /** Extend the lease on rows `owner` still holds; returns the gids whose lease was extended. */
  renewLeases(owner: string, gids: readonly string[], leaseUntil: number): Promise<string[]>;

  /** Cheap round trip used by health checks. */
  ping(): Promise<void>;

  close(): Promise<void>;
}
