import type { TransactionStatus } from "../../store/index.js";

/**
 * What a command refuses, in domain terms. Each way into the coordinator maps these to its own
 * wire form in one place (for Connect: server/api/errors.ts).
 */
export abstract class CommandError extends Error {}

/** The request itself is wrong; `field` names the offending field in the API's own spelling. */
export class InvalidInputError extends CommandError {
  override name = "InvalidInputError";
  constructor(
    readonly field: string,
    readonly description: string,
  ) {
    super(`${field}: ${description}`);
  }
}

export class TransactionNotFoundError extends CommandError {
  override name = "TransactionNotFoundError";
  constructor(readonly gid: string) {
    super(`transaction "${gid}" not found`);
  }
}

/** The transaction is in a status where the command cannot apply. */
export class WrongStatusError extends CommandError {
  override name = "WrongStatusError";
  constructor(
    readonly gid: string,
    readonly status: TransactionStatus,
    action: string,
  ) {
    super(`transaction "${gid}" is ${status}; it cannot be ${action}`);
  }
}

/** The gid or branch id already names something different. */
export class ConflictError extends CommandError {
  override name = "ConflictError";
  constructor(
    readonly reason: "GID_CONFLICT" | "BRANCH_EXISTS",
    message: string,
    readonly metadata: Record<string, string>,
  ) {
    super(message);
  }
}

/** A request_id the caller already used for a different request (AIP-155). */
export class RequestIdReusedError extends CommandError {
  override name = "RequestIdReusedError";
  readonly field = "request_id";
  constructor(readonly requestId: string) {
    super(`"${requestId}" was already used for a different request; use a new request_id for each distinct request`);
  }
}

/** A branch operation that is not in the state the command needs (e.g. skipping one that ended). */
export class BranchStateError extends CommandError {
  override name = "BranchStateError";
  constructor(
    readonly gid: string,
    readonly branchId: string,
    readonly op: string,
    readonly status: string,
  ) {
    super(`branch ${branchId} ${op} of "${gid}" is ${status}; only a pending operation can be skipped`);
  }
}
