import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type CallOptions, type Client } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { CoordinatorService, type ListTransactionsRequestSchema } from "../gen/accord/v1/coordinator_pb.js";
import type { Transaction } from "../gen/accord/v1/transaction_pb.js";
import type { AccordClientOptions } from "./client-options.js";
import { withFailover } from "./call-policy.js";
import { discoverCoordinators, type CoordinatorDiscovery } from "./discovery.js";
import { MsgBuilder, type MsgInit } from "./msg-builder.js";
import { SagaBuilder, type TransactionInit } from "./saga-builder.js";
import { runTwoPhase, type TwoPhaseContext, type TwoPhaseInit } from "./two-phase.js";
import { checkRoutingRules, routeFor, type CoordinatorEndpoint, type RoutingRule } from "./routing.js";
import { createTransport } from "./transport.js";

type CoordinatorClient = Client<typeof CoordinatorService>;

/** Per-call options: a signal to cancel, a deadline other than the client's. */
export interface CallControl {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** The transaction the call is about, for canary routing (see RoutingRule). */
  gid?: string;
}

/** The calls builders make: every one with failover, and mutating ones with a request_id. */
export interface CoordinatorCalls {
  call<T>(fn: (client: CoordinatorClient, options: CallOptions) => Promise<T>, control?: CallControl): Promise<T>;
  newGid(control?: CallControl): Promise<string>;
  /** A fresh idempotency key: retries of one logical call reuse it. */
  requestId(): string;
}

/** A client of one or more Accord coordinators. */
export class AccordClient implements CoordinatorCalls {
  readonly #options: AccordClientOptions;
  readonly #byAddress = new Map<string, CoordinatorClient>();
  readonly #discovery: CoordinatorDiscovery | undefined;
  readonly #timeoutMs: number;
  readonly #retries: number;
  #routing: RoutingRule[];
  #next = 0;

  constructor(options: AccordClientOptions) {
    const addresses = options.addresses ?? (options.address ? [options.address] : []);
    if (addresses.length === 0 && !options.etcd) throw new Error("createAccordClient: give address, addresses or etcd");
    this.#options = { ...options, addresses };
    this.#discovery = options.etcd ? discoverCoordinators(options.etcd) : undefined;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#retries = options.retries ?? 3;
    this.#routing = checkRoutingRules(options.routing ?? []);
  }

  /**
   * Replaces the canary routing rules; calls made from now on follow them. Throws
   * RoutingRuleError for a rule that cannot work.
   * @example accord.setRouting([{ labels: { track: "canary" }, share: 0.05 }]);
   */
  setRouting(rules: RoutingRule[]): void {
    this.#routing = checkRoutingRules(rules);
  }

  /**
   * The coordinators for a call about `gid`, routed ones first (see RoutingRule), then the rest;
   * and how many are routed. Failover starts among the routed ones and goes on to the others,
   * so a canary that died but is still listed in etcd costs retries, not errors.
   */
  async #clients(gid?: string): Promise<CoordinatorClient[]> {
    if (this.#discovery) await this.#discovery.ready;
    const endpoints: CoordinatorEndpoint[] = this.#discovery ? this.#discovery.coordinators() : this.#options.addresses!.map((address) => ({ address, labels: {} }));
    if (endpoints.length === 0) throw new ConnectError("no coordinator is registered in etcd", Code.Unavailable);
    const routed = routeFor(endpoints, this.#routing, gid);
    // Balance across the routed ones, then fail over to the rest.
    const start = this.#next++ % routed.length;
    const ordered = [...routed.slice(start), ...routed.slice(0, start), ...endpoints.filter((e) => !routed.includes(e))];
    return ordered.map(({ address }) => {
      let client = this.#byAddress.get(address);
      if (!client) this.#byAddress.set(address, (client = createClient(CoordinatorService, createTransport(address, this.#options))));
      return client;
    });
  }

  async call<T>(fn: (client: CoordinatorClient, options: CallOptions) => Promise<T>, control: CallControl = {}): Promise<T> {
    const clients = await this.#clients(control.gid);
    return withFailover(clients.length, this.#retries, (i) => fn(clients[i]!, { signal: control.signal, timeoutMs: control.timeoutMs ?? this.#timeoutMs }), control.signal);
  }

  /** Stops watching etcd (when discovery is used). */
  async close(): Promise<void> {
    await this.#discovery?.close();
  }

  requestId(): string {
    return randomUUID();
  }

  /** A new unique, time-sortable gid from the coordinator. */
  async newGid(control?: CallControl): Promise<string> {
    return (await this.call((c, o) => c.newGid({}, o), control)).gid;
  }

  /**
   * A SAGA: add steps, then submit.
   * @example await accord.saga().step({ action, compensate, payload }).submit({ wait: true })
   */
  saga(init: TransactionInit = {}): SagaBuilder {
    return new SagaBuilder(this, init);
  }

  /**
   * A TCC transaction: `body` registers branches and calls their Try; if it throws, every branch
   * is cancelled and the error rethrown, else all are confirmed.
   * @example await accord.tcc(async (t) => { await t.branch({ try: url, confirm, cancel, payload }) })
   */
  tcc(body: (tcc: TwoPhaseContext) => Promise<void>, init: TwoPhaseInit = {}): Promise<Transaction> {
    return runTwoPhase(this, "tcc", body, init);
  }

  /**
   * An XA transaction: `body` registers branches and calls each branch's prepare endpoint (which
   * runs its local work inside XA START … XA PREPARE); then all commit, or all roll back.
   */
  xa(body: (xa: TwoPhaseContext) => Promise<void>, init: TwoPhaseInit = {}): Promise<Transaction> {
    return runTwoPhase(this, "xa", body, init);
  }

  /**
   * A two-phase message: branches that run (until they succeed) once the local transaction given
   * to `run` has committed; `queryPrepared` answers, from the barrier, whether it did.
   */
  msg(init: MsgInit): MsgBuilder {
    return new MsgBuilder(this, init);
  }

  async get(gid: string, control?: CallControl): Promise<Transaction> {
    const { transaction } = await this.call((c, o) => c.getTransaction({ gid }, o), control);
    return transaction!;
  }

  async list(request: MessageInitShape<typeof ListTransactionsRequestSchema> = {}, control?: CallControl) {
    return this.call((c, o) => c.listTransactions(request, o), control);
  }

  /** Every state of the transaction from now until it ends (or `signal` aborts). */
  async *watch(gid: string, signal?: AbortSignal): AsyncIterable<Transaction> {
    const [client] = await this.#clients();
    for await (const update of client!.watchTransaction({ gid }, { signal })) if (update.transaction) yield update.transaction;
  }
}

/**
 * Creates a client of Accord coordinators.
 * @example const accord = createAccordClient({ address: "http://127.0.0.1:7460" });
 */
export function createAccordClient(options: AccordClientOptions): AccordClient {
  return new AccordClient(options);
}
