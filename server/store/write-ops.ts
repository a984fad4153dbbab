import type {
  BranchChanges,
  BranchOp,
  BranchRecord,
  CreateResult,
  TransactionChanges,
  TransactionExpectation,
  TransactionRecord,
  TransactionStatus,
} from "./records.js";

/**
 * One write of a unit of work. A unit (an array of ops) is applied atomically; the store groups
 * the units of concurrent callers into one database transaction, so one commit (one fsync)
 * serves many transactions (DESIGN.md rule 9).
 */
export type WriteOp =
  /** Insert a transaction and its branches; nothing is written if the gid exists. */
  | { kind: "create"; transaction: TransactionRecord; branches: BranchRecord[] }
  /** Compare-and-set on one transaction row. */
  | { kind: "transaction"; gid: string; expect: TransactionExpectation; changes: TransactionChanges }
  /** Set the same changes on some branch operations, only while the transaction is in `statuses`. */
  | {
      kind: "branches";
      gid: string;
      keys: { branchId: string; op: BranchOp }[];
      statuses: readonly TransactionStatus[];
      changes: BranchChanges;
    };

/** Per op: a CreateResult for "create", otherwise whether any row matched. */
export type WriteOutcome = CreateResult | boolean;
