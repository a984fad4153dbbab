import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import {
  BranchStateError,
  ConflictError,
  InvalidInputError,
  RequestIdReusedError,
  TransactionNotFoundError,
  WrongStatusError,
  type CommandError,
} from "../engine/commands/index.js";

const DOMAIN = "accord.v1";

/** INVALID_ARGUMENT naming the field, with a google.rpc.BadRequest detail for programs. */
export function invalidArgument(field: string, description: string): ConnectError {
  return new ConnectError(`${field}: ${description}`, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: create(BadRequestSchema, { fieldViolations: [{ field, description }] }) },
  ]);
}

/** An error with a machine-readable reason (google.rpc.ErrorInfo). */
export function errorWithReason(code: Code, reason: string, message: string, metadata: Record<string, string> = {}): ConnectError {
  return new ConnectError(message, code, undefined, [
    { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: DOMAIN, metadata }) },
  ]);
}

export function transactionNotFound(gid: string): ConnectError {
  return errorWithReason(Code.NotFound, "TRANSACTION_NOT_FOUND", `transaction "${gid}" not found`, { gid });
}

/**
 * The one mapping from the engine's command errors to Connect codes and error details. Every
 * Connect service goes through it (the error interceptor), so a new command error is mapped here.
 */
export function toConnectError(error: CommandError): ConnectError {
  if (error instanceof InvalidInputError) return invalidArgument(error.field, error.description);
  if (error instanceof RequestIdReusedError) return invalidArgument(error.field, error.message);
  if (error instanceof TransactionNotFoundError) return transactionNotFound(error.gid);
  if (error instanceof WrongStatusError) return errorWithReason(Code.FailedPrecondition, "WRONG_STATUS", error.message, { gid: error.gid, status: error.status });
  if (error instanceof ConflictError) return errorWithReason(Code.AlreadyExists, error.reason, error.message, error.metadata);
  if (error instanceof BranchStateError) {
    return errorWithReason(Code.FailedPrecondition, "BRANCH_NOT_PENDING", error.message, { gid: error.gid, branchId: error.branchId, op: error.op, status: error.status });
  }
  return new ConnectError(error.message, Code.Internal);
}
