import { create, fromJsonString } from "@bufbuild/protobuf";
import { timestampFromMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  TransactionOptionsSchema,
  TransactionSchema,
  type Branch,
  type Transaction,
} from "../../gen/accord/v1/transaction_pb.js";
import { BranchOp } from "../../gen/accord/v1/transaction_pb.js";
import type { AdminActionRecord, BranchRecord, TransactionRecord } from "../store/index.js";
import { adminActionKinds, branchOps, branchStatuses, modes, transactionStatuses } from "./enum-mapping.js";

const timestamp = (ms: number | null): Timestamp | undefined => (ms === null ? undefined : timestampFromMs(ms));

function toBranch(record: BranchRecord): Omit<Branch, "$typeName"> {
  return {
    branchId: record.branchId,
    op: branchOps.toProto(record.op),
    target: record.target,
    payload: record.payload,
    status: branchStatuses.toProto(record.status),
    attempts: record.attempts,
    lastError: record.lastError,
    after: record.after,
    updatedAt: timestampFromMs(record.updatedAt),
  };
}

/** The API view of a stored transaction (with its operators' actions when the caller read them). */
export function toTransaction(record: TransactionRecord, branches: BranchRecord[] = [], adminActions: AdminActionRecord[] = []): Transaction {
  return create(TransactionSchema, {
    gid: record.gid,
    mode: modes.toProto(record.mode),
    status: transactionStatuses.toProto(record.status),
    branches: branches.map(toBranch),
    options: fromJsonString(TransactionOptionsSchema, record.options),
    stalled: record.stalled,
    lastError: record.lastError,
    createdAt: timestampFromMs(record.createdAt),
    updatedAt: timestampFromMs(record.updatedAt),
    finishedAt: timestamp(record.finishedAt),
    nextAttemptAt: timestamp(record.nextAttemptAt),
    failedBranchId: record.failedBranchId,
    failureReason: record.failureReason,
    queryPrepared: record.queryPrepared,
    adminActions: adminActions.map((a) => ({
      kind: adminActionKinds.toProto(a.action),
      identity: a.identity,
      reason: a.reason,
      at: timestampFromMs(a.at),
      branchId: a.branchId,
      op: a.op === "" ? BranchOp.UNSPECIFIED : branchOps.toProto(a.op),
    })),
  });
}
