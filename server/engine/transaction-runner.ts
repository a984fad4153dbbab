import type { Logger } from "pino";
import type { EngineConfig } from "../config.js";
import type { EngineMetrics } from "../observe/metrics.js";
import { isFinal, type BranchRecord, type Store, type TransactionChanges, type TransactionRecord, type TransactionStatus, type TransactionWithBranches, type WriteOp } from "../store/index.js";
import type { BranchInvoker } from "./branch-invoker.js";
import { driverFor } from "./mode-drivers.js";
import { backoffMs, effectivePolicy } from "./policy.js";
import { transitionOp } from "./transitions.js";
import type { TransactionEvents } from "./transaction-events.js";

export interface RunnerContext {
  store: Store;
  invoker: BranchInvoker;
  config: EngineConfig;
  coordinatorId: string;
  logger: Logger;
  events: TransactionEvents;
  metrics?: Pick<EngineMetrics, "transactionFinished">;
  /** True once this coordinator should hand the transaction back (stopping, or lease lost). */
  shouldYield(gid: string): boolean;
  /** The lease this run holds runs until `leaseUntil`, under `generation` (as read with the transaction). */
  noteLease(gid: string, leaseUntil: number | null, generation: number): void;
  /** The run gave the lease back itself (the transaction is final or waits): not a lost lease. */
  noteReleased(gid: string): void;
  /** Whether the lease is still held, renewing it first when it is close to running out. */
  stillOwned(gid: string): Promise<boolean>;
}

/** The branch id sent with an MSG's query_prepared call, which belongs to no branch. */
export const QUERY_PREPARED_BRANCH_ID = "00";

/** How a run ended: the transaction is final, waits for a retry, or is no longer ours. */
export type RunResult = { kind: "finished" } | { kind: "waiting"; until: number } | { kind: "yielded" };

const FINISHED: RunResult = { kind: "finished" };
const YIELDED: RunResult = { kind: "yielded" };

/**
 * Drives one transaction as far as it can go now, whatever its mode: asks the mode's driver what
 * to do, calls branches, moves the global status with compare-and-set, and stops when the
 * transaction is final or only waiting remains (the poller brings it back when it is due).
 *
 * The run holds the lease, so it keeps the state in memory and writes only what recovery needs:
 * a branch's success rides along with the next status write instead of costing a commit of its
 * own (if the coordinator dies first, the branch is simply called again — branches are
 * idempotent by contract).
 */
export async function runTransaction(ctx: RunnerContext, gid: string, initial?: TransactionWithBranches): Promise<RunResult> {
  const loaded = initial ?? (await ctx.store.getTransaction(gid));
  if (!loaded) return FINISHED;
  const tx: TransactionRecord = { ...loaded.transaction };
  const branches = loaded.branches.map((b) => ({ ...b }));
  if (isFinal(tx.status)) return FINISHED;
  if (tx.owner !== ctx.coordinatorId) return YIELDED;
  ctx.noteLease(gid, tx.leaseUntil, tx.leaseGeneration);
  const stillOwned = () => ctx.stillOwned(gid);

  const log = ctx.logger.child({ gid, mode: tx.mode });
  const policy = effectivePolicy(tx.options, ctx.config);
  const driver = driverFor(tx.mode, branches, policy);
  const unsaved = new Set<BranchRecord>();
  const notBefore = new Map<BranchRecord, number>();
  let queryAttempts = 0;

  /**
   * Writes the unsaved branch progress and a CAS on the transaction as one unit, while this
   * coordinator holds the lease: to status `to` (through the transition table), or, with
   * `to` = "same", in the status it has (undefined: whatever status it has).
   */
  const persist = async (changes: Omit<TransactionChanges, "status">, to: TransactionStatus | "same" | undefined): Promise<boolean> => {
    const now = Date.now();
    const fullChanges: TransactionChanges = { ...changes, updatedAt: now };
    const owner = ctx.coordinatorId;
    // Held by this coordinator under the generation this run took: a later taker wins, even one
    // with the same coordinator id (a restarted process while this one was paused).
    const holder = { owner, leaseGeneration: tx.leaseGeneration };
    const cas: WriteOp =
      to === undefined || to === "same"
        ? { kind: "transaction", gid, expect: { ...holder, ...(to === "same" ? { statuses: [tx.status] } : {}) }, changes: fullChanges }
        : { ...transitionOp(gid, tx.mode, tx.status, to, fullChanges, owner), expect: holder };
    const ops: WriteOp[] = [...groupBranchWrites(gid, unsaved, tx.status, now), cas];
    const outcomes = await ctx.store.write(ops);
    unsaved.clear();
    const moved = outcomes.at(-1) === true;
    if (moved) {
      if (fullChanges.owner === null) ctx.noteReleased(gid);
      Object.assign(tx, fullChanges, to === undefined || to === "same" ? {} : { status: to });
      ctx.events.changed(gid, { transaction: { ...tx }, branches: branches.map((b) => ({ ...b })) });
    }
    return moved;
  };

  const release = async (until: number): Promise<RunResult> => {
    await persist({ nextAttemptAt: until, owner: null, leaseUntil: null }, undefined);
    return { kind: "waiting", until };
  };

  const finish = async (status: "succeeded" | "failed", reason?: string): Promise<RunResult> => {
    const now = Date.now();
    const changes: TransactionChanges = { finishedAt: now, nextAttemptAt: null, owner: null, leaseUntil: null, stalled: false };
    if (reason) changes.failureReason = reason;
    const done = await persist(changes, status);
    if (done) {
      log.info({ status }, "transaction finished");
      ctx.metrics?.transactionFinished(tx.mode, status, (now - tx.createdAt) / 1000);
    }
    return done ? FINISHED : YIELDED;
  };

  /** A call found the lease gone before it left: stop, and let the owner (if not us) carry on. */
  const yieldUnsent = async (): Promise<RunResult> => {
    log.info("the lease was gone before a branch call could leave; not sent");
    await release(Date.now());
    return YIELDED;
  };

  const transition = async (to: TransactionStatus, changes: TransactionChanges = {}): Promise<boolean> => persist(changes, to);

  for (;;) {
    if (ctx.shouldYield(gid)) return release(Date.now());
    const now = Date.now();
    const work = driver.next(tx, now);

    if (work.kind === "finish") return finish(work.status, work.reason);
    if (work.kind === "wait") return release(work.until);
    if (work.kind === "transition") {
      log.info({ to: work.to, reason: work.reason }, "status change");
      if (!(await transition(work.to, { failureReason: work.reason }))) return YIELDED;
      continue;
    }
    if (work.kind === "query") {
      queryAttempts++;
      const outcome = await ctx.invoker.invoke({
        gid,
        mode: tx.mode,
        branchId: QUERY_PREPARED_BRANCH_ID,
        op: "query",
        target: tx.queryPrepared,
        payload: new Uint8Array(),
        traceparent: policy.traceparent,
        timeoutMs: policy.branchTimeoutMs,
        fence: tx.leaseGeneration,
        stillOwned,
      });
      if (outcome.kind === "unsent") return yieldUnsent();
      if (outcome.kind === "success") {
        log.info("query_prepared: the local transaction committed; running the branches");
        if (!(await transition("submitted", { lastError: "" }))) return YIELDED;
        continue;
      }
      if (outcome.kind === "failure") return finish("failed", `query_prepared answered FAILURE: ${outcome.detail}`);
      const delay = outcome.kind === "ongoing" ? policy.retry.ongoingMs : backoffMs(queryAttempts, policy.retry);
      const stalled = (outcome.kind === "error" && queryAttempts >= policy.retry.maxAttempts) || Date.now() - tx.createdAt >= policy.retry.maxElapsedMs;
      await persist({ lastError: `query_prepared: ${outcome.detail} (attempt ${queryAttempts})`, stalled: stalled || tx.stalled }, "same");
      return release(Date.now() + delay);
    }

    const candidates = work.branches;
    const due = candidates.filter((b) => (notBefore.get(b) ?? 0) <= now);
    if (due.length === 0) {
      const deadline = tx.mode === "saga" && tx.status === "submitted" && tx.deadlineAt !== null ? tx.deadlineAt : Infinity;
      return release(Math.min(deadline, ...candidates.map((b) => notBefore.get(b) ?? now)));
    }

    const outcomes = await Promise.all(
      due.map((branch) =>
        ctx.invoker.invoke({
          gid,
          mode: tx.mode,
          branchId: branch.branchId,
          op: branch.op,
          target: branch.target,
          payload: branch.payload,
          traceparent: policy.traceparent,
          timeoutMs: policy.branchTimeoutMs,
          fence: tx.leaseGeneration,
          stillOwned,
        }),
      ),
    );
    // The lease went while calls waited: whatever did run is called again by the next owner.
    if (outcomes.some((o) => o.kind === "unsent")) return yieldUnsent();

    let refusal: { branch: BranchRecord; detail: string } | undefined;
    let stalled = tx.stalled;
    let lastError = "";
    due.forEach((branch, i) => {
      const outcome = outcomes[i]!;
      branch.attempts++;
      branch.updatedAt = Date.now();
      unsaved.add(branch);
      if (outcome.kind === "success") {
        branch.status = "succeeded";
        branch.lastError = "";
        stalled = false; // the next success clears it
        return;
      }
      branch.lastError = outcome.detail;
      if (outcome.kind === "failure" && driver.refusalIsFinal(branch.op)) {
        branch.status = "failed";
        refusal ??= { branch, detail: outcome.detail };
        return;
      }
      // FAILURE from a compensation, confirm, cancel or MSG branch is an error to retry.
      if (outcome.kind === "failure") log.warn({ branchId: branch.branchId, op: branch.op, detail: outcome.detail }, "branch refused an operation that must succeed; retrying");
      const delay = outcome.kind === "ongoing" ? policy.retry.ongoingMs : backoffMs(branch.attempts, policy.retry);
      notBefore.set(branch, Date.now() + delay);
      lastError = `${branch.branchId}/${branch.op}: ${outcome.detail} (attempt ${branch.attempts})`;
      const pastAttempts = outcome.kind !== "ongoing" && branch.attempts >= policy.retry.maxAttempts;
      const pastElapsed = Date.now() - tx.createdAt >= policy.retry.maxElapsedMs;
      if (pastAttempts || pastElapsed) stalled = true;
    });

    // Watchers see each branch result as it is known, before (and without) a write of its own.
    if (ctx.events.watched(gid)) ctx.events.changed(gid, { transaction: { ...tx, stalled, lastError: lastError || tx.lastError }, branches: branches.map((b) => ({ ...b })) });

    if (refusal) {
      const reason = `branch ${refusal.branch.branchId} ${refusal.branch.op} refused: ${refusal.detail}`;
      log.info({ branchId: refusal.branch.branchId, reason }, "aborting");
      if (!(await transition("aborting", { failedBranchId: refusal.branch.branchId, failureReason: reason }))) return YIELDED;
      continue;
    }
    if (lastError || stalled !== tx.stalled) {
      if (stalled && !tx.stalled) log.warn({ lastError }, "transaction stalled: retries past the policy; still retrying at the cap");
      if (!(await persist({ lastError: lastError || tx.lastError, stalled }, "same"))) return YIELDED;
    }
  }
}

/**
 * Branch progress as few statements as possible: branches with identical changes (the common
 * case: every action succeeded on its first attempt) share one UPDATE.
 */
function groupBranchWrites(gid: string, unsaved: Set<BranchRecord>, status: TransactionStatus, now: number): WriteOp[] {
  const groups = new Map<string, Extract<WriteOp, { kind: "branches" }>>();
  for (const b of unsaved) {
    const changes = { status: b.status, attempts: b.attempts, lastError: b.lastError, updatedAt: now };
    const key = JSON.stringify([b.status, b.attempts, b.lastError]);
    const group = groups.get(key);
    if (group) group.keys.push({ branchId: b.branchId, op: b.op });
    else groups.set(key, { kind: "branches", gid, keys: [{ branchId: b.branchId, op: b.op }], statuses: [status], changes });
  }
  return [...groups.values()];
}
