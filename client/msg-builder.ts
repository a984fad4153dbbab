import { Mode, type Transaction } from "../gen/accord/v1/transaction_pb.js";
import type { CoordinatorCalls } from "./accord-client.js";
import { encodePayload, type PayloadInput } from "./payload.js";
import type { SubmitControl, TransactionInit } from "./saga-builder.js";

export interface MsgInit extends TransactionInit {
  /** Target the coordinator asks, if Submit never comes, whether the local transaction committed. */
  queryPrepared: string;
}

export interface MsgStep {
  action: string;
  payload?: PayloadInput;
  branchId?: string;
}

/**
 * A two-phase message: Begin with the branches, run the local transaction (which writes the
 * barrier row, see Barrier.msg), then Submit. If the local work throws, the message is aborted.
 */
export class MsgBuilder {
  readonly #steps: MsgStep[] = [];

  constructor(
    private readonly calls: CoordinatorCalls,
    private readonly init: MsgInit,
  ) {}

  step(step: MsgStep): this {
    this.#steps.push(step);
    return this;
  }

  /**
   * @example await accord.msg({ queryPrepared }).step({ action, payload })
   *   .run((gid) => barrier.msg(gid, (tx) => debit(tx)), { wait: true })
   */
  async run(local: (gid: string) => Promise<unknown>, control: SubmitControl = {}): Promise<Transaction> {
    const gid = this.init.gid ?? (await this.calls.newGid(control));
    const steps = this.#steps.map((s) => ({ action: s.action, payload: encodePayload(s.payload), branchId: s.branchId ?? "" }));
    const beginId = this.calls.requestId();
    await this.calls.call(
      (c, o) => c.begin({ gid, mode: Mode.MSG, steps, queryPrepared: this.init.queryPrepared, options: this.init.options, requestId: beginId }, o),
      { ...control, gid },
    );
    try {
      await local(gid);
    } catch (error) {
      const abortId = this.calls.requestId();
      await this.calls.call((c, o) => c.abort({ gid, reason: error instanceof Error ? error.message.slice(0, 1024) : "local transaction failed", requestId: abortId }, o), {
        timeoutMs: control.timeoutMs,
        gid,
      });
      throw error;
    }
    const submitId = this.calls.requestId();
    const { transaction } = await this.calls.call(
      (c, o) => c.submit({ gid, mode: Mode.MSG, wait: control.wait ?? false, requestId: submitId }, o),
      { ...control, gid },
    );
    return transaction!;
  }
}
