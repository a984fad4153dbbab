import { noteStoreGroup, traceStoreWrite, tracingOn } from "../observe/tracing.js";
import { createGroupCommit } from "./group-commit.js";
import type { AdminActionRecord, HeldLease, BacklogStats, ClaimedTransaction, ListPage, ListQuery, RequestRecord, TransactionWithBranches } from "./records.js";
import type { DeletedRows, Store } from "./store.js";
import type { WriteOp, WriteOutcome } from "./write-ops.js";

/** The part every backend shares: single writes are units of one op, all through group commit. */
export abstract class GroupedStore implements Store {
  abstract readonly kind: Store["kind"];
  readonly #commit: (unit: WriteOp[]) => Promise<WriteOutcome[]>;

  constructor(options: Parameters<typeof createGroupCommit>[1]) {
    this.#commit = createGroupCommit((units) => {
      noteStoreGroup(units);
      return this.executeUnits(units);
    }, options);
  }

  /** Apply the units in one database transaction; one outcome array per unit. */
  protected abstract executeUnits(units: WriteOp[][]): Promise<WriteOutcome[][]>;

  write(ops: WriteOp[]): Promise<WriteOutcome[]> {
    // Tracing off: not even a closure for it.
    return tracingOn() ? traceStoreWrite(this.kind, ops, () => this.#commit(ops)) : this.#commit(ops);
  }

  abstract getAdminActions(gid: string): Promise<AdminActionRecord[]>;
  abstract getRequest(caller: string, requestId: string): Promise<RequestRecord | undefined>;
  abstract getTransaction(gid: string): Promise<TransactionWithBranches | undefined>;
  abstract listTransactions(query: ListQuery): Promise<ListPage>;
  abstract claimDue(owner: string, now: number, leaseUntil: number, limit: number): Promise<ClaimedTransaction[]>;
  abstract backlog(now: number): Promise<BacklogStats>;
  abstract renewLeases(owner: string, leases: readonly HeldLease[], leaseUntil: number): Promise<string[]>;
  abstract deleteFinished(finishedBefore: number, limit: number): Promise<DeletedRows>;
  abstract ping(): Promise<void>;
  abstract close(): Promise<void>;
}
