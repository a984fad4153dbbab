import { BranchFailure, type BranchInfo } from "../branch-handler.js";

/** What a barrier needs from a database; one implementation per driver (mysql2, libsql). */
export interface BarrierDatabase<Tx> {
  /** Runs `fn` in one local transaction: commits if it resolves, rolls back if it throws. */
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Inserts a barrier row unless one exists; true when inserted. */
  insert(tx: Tx, row: BarrierRow): Promise<boolean>;
  /** The reason stored on an existing row. */
  reason(tx: Tx, key: Omit<BarrierRow, "reason">): Promise<string | undefined>;
  /**
   * Deletes at most `limit` rows created before `before` (epoch ms), oldest first, in one short
   * local transaction; resolves with how many.
   */
  deleteBefore(before: number, limit: number): Promise<number>;
  /** Creates the barrier table if it is missing (the DDL ships in ddl.ts). */
  createTable(): Promise<void>;
}

export interface BarrierRow {
  gid: string;
  branchId: string;
  op: string;
  /** The operation that wrote the row: itself, or the compensation that blocked its origin. */
  reason: string;
}

/** How a barrier call ended. */
export type BarrierOutcome =
  /** The business ran and committed with its barrier row. */
  | "applied"
  /** This (gid, branch, op) already took effect: nothing done again. */
  | "duplicate"
  /** A compensation whose action never ran: nothing to undo. */
  | "null-compensation";

/** The operation a compensation undoes; its row is written too, so a late action is refused. */
const ORIGIN: Record<string, string> = { compensate: "action", cancel: "try" };

const MSG_BRANCH = "00";

/**
 * The sub-transaction barrier: makes at-least-once branch calls take effect exactly once, in the
 * business's own local transaction. A row (gid, branch_id, op) is inserted with the business
 * writes, so a duplicate call finds it and does nothing; a compensate or cancel also inserts its
 * origin op's row, so when the action never ran the compensation does nothing ("null
 * compensation") and an action arriving afterwards is refused ("no hanging").
 */
export class Barrier<Tx> {
  constructor(private readonly db: BarrierDatabase<Tx>) {}

  /**
   * Runs a branch operation behind the barrier. Throws BranchFailure for an action or try that
   * arrives after its compensation (answer it with 409 / ABORTED).
   * @example await barrier.call(branchInfo(req.headers), (tx) => debit(tx, account, amount))
   */
  call(info: BranchInfo, business: (tx: Tx) => Promise<void>): Promise<BarrierOutcome> {
    const { gid, branchId, op } = info;
    const origin = ORIGIN[op];
    return this.db.transaction(async (tx) => {
      const originInserted = origin ? await this.db.insert(tx, { gid, branchId, op: origin, reason: op }) : false;
      const inserted = await this.db.insert(tx, { gid, branchId, op, reason: op });
      if (originInserted) return "null-compensation";
      if (!inserted) {
        const reason = await this.db.reason(tx, { gid, branchId, op });
        if (reason !== op) throw new BranchFailure(`${op} of ${gid}/${branchId} arrived after its ${reason}: refused`);
        return "duplicate";
      }
      await business(tx);
      return "applied";
    });
  }

  /**
   * The local transaction of a two-phase message: the business writes and the barrier row commit
   * together, which is what `queryPrepared` later reads.
   */
  msg(gid: string, business: (tx: Tx) => Promise<void>): Promise<BarrierOutcome> {
    return this.db.transaction(async (tx) => {
      const key = { gid, branchId: MSG_BRANCH, op: "msg" };
      if (!(await this.db.insert(tx, { ...key, reason: "msg" }))) {
        // The back-check got here first and settled the message as never committed.
        if ((await this.db.reason(tx, key)) === "rollback") throw new Error(`message ${gid} was already rolled back by the coordinator's back-check`);
        return "duplicate";
      }
      await business(tx);
      return "applied";
    });
  }

  /**
   * Answers the coordinator's back-check of a message: resolves if the local transaction
   * committed (SUCCESS); throws BranchFailure if it did not — and makes sure it never will, by
   * taking its row first (FAILURE).
   */
  async queryPrepared(gid: string): Promise<void> {
    const key = { gid, branchId: MSG_BRANCH, op: "msg" };
    // The verdict is decided inside the transaction but reported after it commits, so the
    // "rollback" row that blocks a late local transaction is kept.
    const committed = await this.db.transaction(async (tx) => {
      if (await this.db.insert(tx, { ...key, reason: "rollback" })) return false;
      return (await this.db.reason(tx, key)) !== "rollback";
    });
    if (!committed) throw new BranchFailure(`message ${gid}: the local transaction did not commit`);
  }

  /**
   * Deletes barrier rows older than `olderThanMs`, `batchSize` rows per local transaction (so
   * branch calls running meanwhile wait at most one batch), until none that old are left;
   * resolves with how many it deleted.
   *
   * A row must outlive every call that can still arrive for its transaction: once the row of an
   * action is gone, a late compensation of it counts as a null compensation and undoes nothing,
   * and a repeated call runs again. So `olderThanMs` must exceed the longest time any transaction
   * stays unfinished — stalled ones included, which the coordinator retries for ever (see
   * `ListTransactions` with `stalled_only`) — and is safely the coordinator's
   * `retention.finishedAfterMs` or more.
   * @example setInterval(() => barrier.cleanup(30 * 24 * 3600_000).catch(log), 3600_000)
   */
  async cleanup(olderThanMs: number, { batchSize = 1000 }: { batchSize?: number } = {}): Promise<number> {
    if (!Number.isFinite(olderThanMs) || olderThanMs < 0) throw new RangeError(`cleanup: olderThanMs must be a non-negative number of milliseconds (got ${olderThanMs})`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`cleanup: batchSize must be a positive integer (got ${batchSize})`);
    // One cut-off for the whole clean-up: rows written while it runs are never its business.
    const before = Date.now() - olderThanMs;
    let total = 0;
    for (;;) {
      const deleted = await this.db.deleteBefore(before, batchSize);
      total += deleted;
      if (deleted < batchSize) return total;
    }
  }

  createTable(): Promise<void> {
    return this.db.createTable();
  }
}
