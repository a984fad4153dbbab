import { Mode, type Transaction } from "../gen/accord/v1/transaction_pb.js";
import type { CallControl, CoordinatorCalls } from "./accord-client.js";
import { encodePayload, type PayloadInput } from "./payload.js";
import type { TransactionInit } from "./saga-builder.js";

export interface TwoPhaseInit extends TransactionInit, CallControl {
  /** Wait for the final state after Submit (or Abort). */
  wait?: boolean;
}

export interface TwoPhaseBranch {
  /** TCC: the Try endpoint; XA: the endpoint that runs the local work and XA-prepares it. HTTP(S). */
  try: string;
  /** TCC: Confirm; XA: Commit. */
  confirm: string;
  /** TCC: Cancel; XA: Rollback. */
  cancel: string;
  payload?: PayloadInput;
  branchId?: string;
}

/** Thrown when a branch's Try answers anything but 2xx; the transaction was rolled back. */
export class TryFailedError extends Error {
  override name = "TryFailedError";
  constructor(
    readonly branchId: string,
    readonly status: number,
    detail: string,
  ) {
    super(`try of branch ${branchId} answered ${status}${detail ? `: ${detail}` : ""}`);
  }
}

/** What a TCC or XA body uses to add branches. */
export class TwoPhaseContext {
  #count = 0;

  constructor(
    private readonly calls: CoordinatorCalls,
    readonly gid: string,
    private readonly mode: "tcc" | "xa",
    private readonly control: CallControl,
  ) {}

  /** Registers a branch without calling it (for Try endpoints the application calls itself, e.g. gRPC). */
  async register(branch: Omit<TwoPhaseBranch, "try">): Promise<string> {
    const branchId = branch.branchId ?? String(++this.#count).padStart(2, "0");
    const requestId = this.calls.requestId();
    await this.calls.call(
      (c, o) => c.registerBranch({ gid: this.gid, branchId, commit: branch.confirm, rollback: branch.cancel, payload: encodePayload(branch.payload), requestId }, o),
      { ...this.control, gid: this.gid },
    );
    return branchId;
  }

  /** Registers the branch, then calls its Try over HTTP; resolves with the Try's response body. */
  async branch(branch: TwoPhaseBranch): Promise<string> {
    const branchId = await this.register(branch);
    const response = await fetch(branch.try, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "accord-gid": this.gid,
        "accord-mode": this.mode,
        "accord-branch-id": branchId,
        "accord-op": "try",
      },
      body: encodePayload(branch.payload),
      signal: this.control.signal,
    });
    const body = await response.text();
    if (!response.ok) throw new TryFailedError(branchId, response.status, body);
    return body;
  }
}

/** Begin, run the body, then Submit — or Abort and rethrow if the body throws. */
export async function runTwoPhase(
  calls: CoordinatorCalls,
  mode: "tcc" | "xa",
  body: (context: TwoPhaseContext) => Promise<void>,
  init: TwoPhaseInit,
): Promise<Transaction> {
  const protoMode = mode === "tcc" ? Mode.TCC : Mode.XA;
  const gid = init.gid ?? (await calls.newGid(init));
  const beginId = calls.requestId();
  await calls.call((c, o) => c.begin({ gid, mode: protoMode, options: init.options, requestId: beginId }, o), { ...init, gid });
  try {
    await body(new TwoPhaseContext(calls, gid, mode, init));
  } catch (error) {
    const abortId = calls.requestId();
    const reason = error instanceof Error ? error.message : String(error);
    // Without a signal: the rollback must go out even when the caller gave up.
    await calls.call((c, o) => c.abort({ gid, reason: reason.slice(0, 1024), wait: init.wait ?? false, requestId: abortId }, o), { timeoutMs: init.timeoutMs, gid });
    throw error;
  }
  const submitId = calls.requestId();
  const { transaction } = await calls.call((c, o) => c.submit({ gid, mode: protoMode, wait: init.wait ?? false, requestId: submitId }, o), { ...init, gid });
  return transaction!;
}
