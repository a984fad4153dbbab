/** What a branch call came to, read from the status only (docs/architecture.md, "The branch contract"). */
export type BranchOutcome =
  | { kind: "success" }
  | { kind: "failure"; detail: string }
  | { kind: "ongoing"; detail: string }
  | { kind: "error"; detail: string }
  /** Not sent: this coordinator no longer holds the transaction's lease. */
  | { kind: "unsent"; detail: string };

export function outcomeOfHttpStatus(status: number, body: string): BranchOutcome {
  if (status >= 200 && status < 300) return { kind: "success" };
  const detail = `HTTP ${status}${body ? `: ${body}` : ""}`;
  if (status === 409) return { kind: "failure", detail };
  if (status === 425) return { kind: "ongoing", detail };
  return { kind: "error", detail };
}

// gRPC status codes, as numbers so the engine does not depend on a gRPC library's enums.
const OK = 0;
const FAILED_PRECONDITION = 9;
const ABORTED = 10;

export function outcomeOfGrpcStatus(code: number, message: string): BranchOutcome {
  if (code === OK) return { kind: "success" };
  const detail = `gRPC status ${code}${message ? `: ${message}` : ""}`;
  if (code === ABORTED) return { kind: "failure", detail };
  if (code === FAILED_PRECONDITION) return { kind: "ongoing", detail };
  return { kind: "error", detail };
}
