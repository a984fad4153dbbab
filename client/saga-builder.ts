import type { MessageInitShape } from "@bufbuild/protobuf";
import { Mode, type Transaction, type TransactionOptionsSchema } from "../gen/accord/v1/transaction_pb.js";
import type { CallControl, CoordinatorCalls } from "./accord-client.js";
import { encodePayload, type PayloadInput } from "./payload.js";

export type TransactionOptionsInit = MessageInitShape<typeof TransactionOptionsSchema>;

export interface TransactionInit {
  /** Bring your own gid; by default the coordinator makes one. */
  gid?: string;
  options?: TransactionOptionsInit;
}

export interface SagaStep {
  action: string;
  compensate: string;
  payload?: PayloadInput;
  branchId?: string;
  /** With options.concurrent: branch ids that must succeed first. */
  after?: string[];
}

export interface SubmitControl extends CallControl {
  /** Return the final state if reached within the deadline. */
  wait?: boolean;
}

/** Collects the steps of a SAGA; `submit` sends them in one request. */
export class SagaBuilder {
  readonly #steps: SagaStep[] = [];
  #options: TransactionOptionsInit | undefined;

  constructor(
    private readonly calls: CoordinatorCalls,
    private readonly init: TransactionInit,
  ) {
    this.#options = init.options;
  }

  step(step: SagaStep): this {
    this.#steps.push(step);
    return this;
  }

  /** Sets the transaction's options (replacing any given before). */
  options(options: TransactionOptionsInit): this {
    this.#options = options;
    return this;
  }

  async submit(control: SubmitControl = {}): Promise<Transaction> {
    const gid = this.init.gid ?? (await this.calls.newGid(control));
    const requestId = this.calls.requestId();
    const steps = this.#steps.map((s) => ({
      action: s.action,
      compensate: s.compensate,
      payload: encodePayload(s.payload),
      branchId: s.branchId ?? "",
      after: s.after ?? [],
    }));
    const { transaction } = await this.calls.call(
      (c, o) => c.submit({ gid, mode: Mode.SAGA, steps, options: this.#options, wait: control.wait ?? false, requestId }, o),
      { ...control, gid },
    );
    return transaction!;
  }
}
