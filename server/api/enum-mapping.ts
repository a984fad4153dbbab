import { AdminActionKind, BranchOp, BranchStatus, Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type * as records from "../store/index.js";

// Proto enums at the edge, short strings in the store: one table per enum, read both ways.

function bidirectional<R extends string, P extends number>(pairs: [R, P][]) {
  const toProto = new Map(pairs);
  const fromProto = new Map(pairs.map(([r, p]) => [p, r] as const));
  return {
    toProto: (r: R): P => toProto.get(r)!,
    /** undefined for UNSPECIFIED and unknown numbers, so callers can name the field. */
    fromProto: (p: P): R | undefined => fromProto.get(p),
  };
}

export const modes = bidirectional<records.Mode, Mode>([
  ["saga", Mode.SAGA],
  ["tcc", Mode.TCC],
  ["msg", Mode.MSG],
  ["xa", Mode.XA],
]);

export const transactionStatuses = bidirectional<records.TransactionStatus, TransactionStatus>([
  ["prepared", TransactionStatus.PREPARED],
  ["submitted", TransactionStatus.SUBMITTED],
  ["aborting", TransactionStatus.ABORTING],
  ["succeeded", TransactionStatus.SUCCEEDED],
  ["failed", TransactionStatus.FAILED],
]);

export const branchOps = bidirectional<records.BranchOp, BranchOp>([
  ["action", BranchOp.ACTION],
  ["compensate", BranchOp.COMPENSATE],
  ["try", BranchOp.TRY],
  ["confirm", BranchOp.CONFIRM],
  ["cancel", BranchOp.CANCEL],
  ["commit", BranchOp.COMMIT],
  ["rollback", BranchOp.ROLLBACK],
]);

export const branchStatuses = bidirectional<records.BranchStatus, BranchStatus>([
  ["pending", BranchStatus.PENDING],
  ["succeeded", BranchStatus.SUCCEEDED],
  ["failed", BranchStatus.FAILED],
  ["skipped", BranchStatus.SKIPPED],
]);

export const adminActionKinds = bidirectional<records.AdminActionKind, AdminActionKind>([
  ["retry", AdminActionKind.RETRY],
  ["fail", AdminActionKind.FAIL],
  ["skip", AdminActionKind.SKIP],
]);
