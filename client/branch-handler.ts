import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Helpers for writing branch services: the coordinator reads only the status of a branch call
 * (2xx/OK = SUCCESS, 409/ABORTED = FAILURE, 425/FAILED_PRECONDITION = ONGOING, anything else =
 * retry later).
 */

/** Throw from a branch handler to refuse the operation (FAILURE: a SAGA action rolls back). */
export class BranchFailure extends Error {
  override name = "BranchFailure";
}

/** Throw from a branch handler to say "not done yet, ask again later" (ONGOING). */
export class BranchOngoing extends Error {
  override name = "BranchOngoing";
}

/** What the coordinator says about the call, from its accord-* headers. */
export interface BranchInfo {
  gid: string;
  mode: string;
  branchId: string;
  /** action, compensate, try, confirm, cancel, commit, rollback or query ("00" is the branch id of query) */
  op: string;
  /**
   * The coordinator's lease generation for the transaction (accord-fence): it grows each time
   * another coordinator takes the transaction over. A service that remembers the highest fence
   * it has seen per gid can refuse a call with a lower one (answer 412, which the coordinator
   * retries) — it comes from a coordinator that lost the transaction. 0 when absent.
   */
  fence: number;
}

type HeaderSource = Headers | Record<string, string | string[] | undefined>;

const header = (headers: HeaderSource, name: string): string => {
  const value = headers instanceof Headers ? headers.get(name) : headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
};

/**
 * Reads the accord-* headers (or gRPC metadata as a plain object).
 * @example const info = branchInfo(req.headers); // { gid: "01J…", mode: "saga", branchId: "01", op: "action" }
 */
export function branchInfo(headers: HeaderSource): BranchInfo {
  const info = {
    gid: header(headers, "accord-gid"),
    mode: header(headers, "accord-mode"),
    branchId: header(headers, "accord-branch-id"),
    op: header(headers, "accord-op"),
    fence: Number(header(headers, "accord-fence")) || 0,
  };
  if (!info.gid || !info.op) throw new Error("not an Accord branch call: accord-gid and accord-op headers are missing");
  return info;
}

/** The HTTP status for a handler's result: nothing thrown → 200, BranchFailure → 409, BranchOngoing → 425, else 500. */
export function httpStatusFor(error?: unknown): number {
  if (error === undefined) return 200;
  if (error instanceof BranchFailure) return 409;
  if (error instanceof BranchOngoing) return 425;
  return 500;
}

/** The gRPC status code for a handler's result: OK, ABORTED, FAILED_PRECONDITION or INTERNAL. */
export function grpcStatusFor(error?: unknown): number {
  if (error === undefined) return 0;
  if (error instanceof BranchFailure) return 10;
  if (error instanceof BranchOngoing) return 9;
  return 13;
}

/**
 * A node:http handler for one branch operation: reads the body and headers, runs `handle`, and
 * answers with the status the coordinator understands.
 * @example http.createServer(httpBranchHandler(async (info, body) => { … }))
 */
export function httpBranchHandler(handle: (info: BranchInfo, body: Buffer) => Promise<void>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      Promise.resolve()
        .then(() => handle(branchInfo(req.headers), Buffer.concat(chunks)))
        .then(
          () => res.writeHead(200).end(),
          (error: unknown) => res.writeHead(httpStatusFor(error)).end(error instanceof Error ? error.message : String(error)),
        );
    });
  };
}
