/** Plain records the store reads and writes; the API maps them to and from proto messages. */

export const MODES = ["saga", "tcc", "msg", "xa"] as const;
export type Mode = (typeof MODES)[number];

export const TRANSACTION_STATUSES = ["prepared", "submitted", "aborting", "succeeded", "failed"] as const;
export type TransactionStatus = (typeof TRANSACTION_STATUSES)[number];

/** SUCCEEDED and FAILED: nothing more happens to the transaction. */
export const isFinal = (status: TransactionStatus | undefined): boolean => status === "succeeded" || status === "failed";

export const BRANCH_OPS = ["action", "compensate", "try", "confirm", "cancel", "commit", "rollback"] as const;
export type BranchOp = (typeof BRANCH_OPS)[number];

export const BRANCH_STATUSES = ["pending", "succeeded", "failed", "skipped"] as const;
export type BranchStatus = (typeof BRANCH_STATUSES)[number];

/** Times are epoch milliseconds: one representation for every backend. */
export interface TransactionRecord {
  gid: string;
  mode: Mode;
  status: TransactionStatus;
  stalled: boolean;
  /** TransactionOptions as proto JSON, so new option fields need no migration. */
  options: string;
  queryPrepared: string;
  traceparent: string;
  lastError: string;
  failedBranchId: string;
  failureReason: string;
  /** Digest of what the caller submitted, to tell a retried Submit from a conflicting one. */
  contentHash: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** When the engine should next look at the transaction; null when nothing is due. */
  nextAttemptAt: number | null;
  /** SAGA timeout_to_fail, as an absolute time. */
  deadlineAt: number | null;
  owner: string | null;
  leaseUntil: number | null;
  /**
   * Grows by one each time an owner takes the lease (a claim, or a coordinator taking the
   * transaction to run it at once). Sent with every branch call as `accord-fence`, so a branch
   * service can refuse calls from a coordinator that has since lost the transaction.
   */
  leaseGeneration: number;
}

export interface BranchRecord {
  gid: string;
  branchId: string;
  op: BranchOp;
  /** Position of the branch in the submitted list; orders execution and compensation. */
  seq: number;
  target: string;
  payload: Uint8Array;
  after: string[];
  status: BranchStatus;
  attempts: number;
  lastError: string;
  updatedAt: number;
}

export interface TransactionWithBranches {
  transaction: TransactionRecord;
  branches: BranchRecord[];
}

export type CreateResult =
  | { created: true }
  | { created: false; existing: TransactionRecord };

export interface ListQuery {
  statuses: TransactionStatus[];
  modes: Mode[];
  createdAfter?: number;
  createdBefore?: number;
  gidPrefix?: string;
  stalledOnly: boolean;
  limit: number;
  /** Resume after this (createdAt, gid), exclusive; newest first. */
  after?: ListCursor;
}

export interface ListCursor {
  createdAt: number;
  gid: string;
}

export interface ListPage {
  transactions: TransactionRecord[];
  /** Set when more rows may follow. */
  next?: ListCursor;
}

/**
 * What a CAS update of a transaction may change besides its status. A status changes only through
 * a StatusTransition, which only the engine's transition table makes (engine/transitions.ts).
 */
export type TransactionChanges = Partial<
  Pick<
    TransactionRecord,
    | "stalled"
    | "lastError"
    | "failedBranchId"
    | "failureReason"
    | "updatedAt"
    | "finishedAt"
    | "nextAttemptAt"
    | "owner"
    | "leaseUntil"
  >
>;

declare const checkedByTransitionTable: unique symbol;

/** A status change the transition table allowed: from `from` (checked by the CAS) to `to`. */
export interface StatusTransition {
  readonly from: TransactionStatus;
  readonly to: TransactionStatus;
  readonly [checkedByTransitionTable]: true;
}

/** The condition a CAS update of a transaction checks. */
export interface TransactionExpectation {
  statuses?: readonly TransactionStatus[];
  /** The caller must hold the lease (owner matches). */
  owner?: string;
  /** …and hold it still under the generation it took it with (a later taker, even one with the same id, wins). */
  leaseGeneration?: number;
}

/** A lease a coordinator believes it holds: the transaction, and the generation it took it under. */
export interface HeldLease {
  gid: string;
  generation: number;
}

export type BranchChanges = Partial<Pick<BranchRecord, "status" | "attempts" | "lastError" | "updatedAt">>;

export interface BranchKey {
  gid: string;
  branchId: string;
  op: BranchOp;
}

/** A mutating request remembered by its request_id, which is unique per caller. */
export interface RequestRecord {
  requestId: string;
  /** Whose id it is: request ids of different callers never meet ("" = anonymous). */
  caller: string;
  method: string;
  gid: string;
  /** Digest of the request's content, so a different request under a known id is refused ("" = not recorded). */
  fingerprint: string;
  createdAt: number;
}

/** The key a request id is unique under. */
export const requestKey = (r: Pick<RequestRecord, "requestId" | "caller">) => `${r.caller}\n${r.requestId}`;

export const ADMIN_ACTIONS = ["retry", "fail", "skip"] as const;
export type AdminActionKind = (typeof ADMIN_ACTIONS)[number];

/** One thing an operator did to a transaction: who, when, what, why. */
export interface AdminActionRecord {
  /** Unique; random. */
  id: string;
  gid: string;
  action: AdminActionKind;
  /** SkipBranch: which operation; empty otherwise. */
  branchId: string;
  op: BranchOp | "";
  /** The caller's certificate identity, "" when anonymous. */
  identity: string;
  reason: string;
  at: number;
}

/** A row a claim took: the transaction as it is now, and who held the lease before the claim. */
export interface ClaimedTransaction extends TransactionRecord {
  /** The owner whose lease had run out, or null when the row was free (a retry, a timeout). */
  previousOwner: string | null;
}

/** Counts over the unfinished transactions at one moment (Store.backlog). */
export interface BacklogStats {
  /** Transactions not yet final. */
  unfinished: number;
  /** Due and not leased: what the pollers have yet to claim. */
  due: number;
  /** When the oldest of those became due; null when none is. */
  oldestDueAt: number | null;
  /** Unfinished transactions marked stalled. */
  stalled: number;
}
