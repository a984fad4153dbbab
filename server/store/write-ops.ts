import type {
  AdminActionRecord,
  BranchChanges,
  BranchOp,
  BranchRecord,
  CreateResult,
  RequestRecord,
  StatusTransition,
  TransactionChanges,
  TransactionExpectation,
  TransactionRecord,
  TransactionStatus,
} from "./records.js";

/**
 * One write of a unit of work. A unit (an array of ops) is applied atomically; the store groups
 * the units of concurrent callers into one database transaction, so one commit (one fsync)
 * serves many transactions (docs/architecture.md, "Grouped writes").
 */
export type WriteOp =
  /** Insert a transaction and its branches; nothing is written if the gid exists. */
  | { kind: "create"; transaction: TransactionRecord; branches: BranchRecord[] }
  /** Remember a request_id; nothing is written if it is known (the outcome says who has it). */
  | { kind: "request"; request: RequestRecord }
  /** Record an operator's action on a transaction (inserted with the unit's other writes). */
  | { kind: "adminAction"; action: AdminActionRecord }
  /** Add branches to a transaction, only while it is in `statuses`. */
  | { kind: "addBranches"; gid: string; statuses: readonly TransactionStatus[]; branches: BranchRecord[] }
  /** Compare-and-set on one transaction row; with `transition`, also its status (from → to). */
  | { kind: "transaction"; gid: string; expect: TransactionExpectation; changes: TransactionChanges; transition?: StatusTransition }
  /** Set the same changes on some branch operations, only while the transaction is in `statuses`. */
  | {
      kind: "branches";
      gid: string;
      keys: { branchId: string; op: BranchOp }[];
      statuses: readonly TransactionStatus[];
      changes: BranchChanges;
    };

/** The outcome of a "request" op: new, or the request that already holds the id. */
export type RequestResult = { created: true } | { created: false; existing: RequestRecord };

/** Per op: a CreateResult for "create", a RequestResult for "request", true for "adminAction", otherwise whether any row matched. */
export type WriteOutcome = CreateResult | RequestResult | boolean;
