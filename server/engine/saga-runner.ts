import type { Logger } from "pino";
import type { EngineConfig } from "../config.js";
import type { BranchRecord, Store, TransactionRecord, TransactionStatus } from "../store/index.js";
import type { BranchInvoker } from "./branch-invoker.js";
import type { BranchOutcome } from "./outcome.js";
import { backoffMs, effectivePolicy } from "./policy.js";
import {
  allActionsDone,
  allCompensationsDone,
  branchesToCompensate,
  buildSagaPlan,
  runnableActions,
  runnableCompensations,
} from "./saga-plan.js";
import type { TransactionEvents } from "./transaction-events.js";

export interface RunnerContext {
  store: Store;
  invoker: BranchInvoker;
  config: EngineConfig;
  coordinatorId: string;
  logger: Logger;
  events: TransactionEvents;
  /** True once this coordinator should hand the transaction back (stopping, or lease lost). */
  shouldYield(gid: string): boolean;
}

/** How a run ended: the transaction is final, waits for a retry, or is no longer ours. */
export type RunResult = { kind: "finished" } | { kind: "waiting"; until: number } | { kind: "yielded" };

interface RoundResult {
  branch: BranchRecord;
  outcome: BranchOutcome;
}

interface Refusal {
  branch: BranchRecord;
  detail: string;
}

/**
 * Drives one SAGA as far as it can go now: runs the runnable actions (or compensations), records
 * their results, moves the global status with compare-and-set, and stops when the transaction is
 * final or only retries remain (then the poller brings it back when they are due).
 */
export async function runSaga(ctx: RunnerContext, gid: string): Promise<RunResult> {
  const log = ctx.logger.child({ gid });
  // Per-branch "not before" times of this run, so one branch's backoff does not hold the others.
  const notBefore = new Map<string, number>();

  for (;;) {
    const loaded = await ctx.store.getTransaction(gid);
    if (!loaded) return { kind: "finished" };
    const { transaction: tx, branches } = loaded;
    if (tx.status === "succeeded" || tx.status === "failed") return { kind: "finished" };
    if (tx.owner !== ctx.coordinatorId) return { kind: "yielded" };
    if (ctx.shouldYield(gid)) return release(ctx, tx, Date.now());

    const policy = effectivePolicy(tx.options, ctx.config);
    const plan = buildSagaPlan(branches, policy.concurrent);
    const now = Date.now();

    if (tx.status === "submitted" && tx.deadlineAt !== null && now >= tx.deadlineAt) {
      const reason = `timeout_to_fail of ${policy.timeoutToFailMs}ms reached before every action succeeded`;
      log.info({ reason }, "saga aborting");
      if (!(await transition(ctx, tx, "submitted", { status: "aborting", failureReason: reason }))) return { kind: "yielded" };
      continue;
    }

    let phase: TransactionStatus;
    let candidates: BranchRecord[];
    if (tx.status === "submitted") {
      if (allActionsDone(plan)) {
        return (await finish(ctx, tx, "submitted", "succeeded")) ? { kind: "finished" } : { kind: "yielded" };
      }
      phase = "submitted";
      candidates = runnableActions(plan);
    } else if (tx.status === "aborting") {
      const needed = branchesToCompensate(plan);
      if (allCompensationsDone(plan, needed)) {
        return (await finish(ctx, tx, "aborting", "failed")) ? { kind: "finished" } : { kind: "yielded" };
      }
      phase = "aborting";
      candidates = runnableCompensations(plan, needed);
    } else {
      log.error({ status: tx.status }, "saga in a status the SAGA engine does not drive");
      return release(ctx, tx, now + policy.retry.maxMs);
    }

    const key = (b: BranchRecord) => `${b.branchId}/${b.op}`;
    const due = candidates.filter((b) => (notBefore.get(key(b)) ?? 0) <= now);
    if (due.length === 0) {
      const waits = candidates.map((b) => notBefore.get(key(b)) ?? now);
      const until = Math.min(...waits, tx.status === "submitted" && tx.deadlineAt !== null ? tx.deadlineAt : Infinity);
      return release(ctx, tx, until);
    }

    const results = await Promise.all(
      due.map(async (branch): Promise<RoundResult> => {
        const outcome = await ctx.invoker.invoke({
          gid,
          mode: tx.mode,
          branchId: branch.branchId,
          op: branch.op,
          target: branch.target,
          payload: branch.payload,
          traceparent: policy.traceparent,
          timeoutMs: policy.branchTimeoutMs,
        });
        return { branch, outcome };
      }),
    );

    let failed: Refusal | undefined;
    let stalled = tx.stalled;
    let lastError = "";
    for (const { branch, outcome } of results) {
      const attempts = branch.attempts + 1;
      const writes = { attempts, updatedAt: Date.now() };
      if (outcome.kind === "success") {
        stalled = false; // the next success clears it
        await ctx.store.updateBranch(branch, [phase], { ...writes, status: "succeeded", lastError: "" });
        continue;
      }
      const detail = outcome.detail;
      // FAILURE is final only for an action; for a compensation it is an error to retry.
      if (outcome.kind === "failure" && branch.op === "action") {
        failed ??= { branch, detail };
        await ctx.store.updateBranch(branch, [phase], { ...writes, status: "failed", lastError: detail });
        continue;
      }
      if (outcome.kind === "failure") log.warn({ branchId: branch.branchId, op: branch.op, detail }, "compensation refused; retrying");
      await ctx.store.updateBranch(branch, [phase], { ...writes, lastError: detail });
      const delay = outcome.kind === "ongoing" ? policy.retry.ongoingMs : backoffMs(attempts, policy.retry);
      notBefore.set(key(branch), Date.now() + delay);
      lastError = `${branch.branchId}/${branch.op}: ${detail} (attempt ${attempts})`;
      if (outcome.kind !== "ongoing" && attempts >= policy.retry.maxAttempts) stalled = true;
    }

    if (failed) {
      const reason = `branch ${failed.branch.branchId} action refused: ${failed.detail}`;
      log.info({ branchId: failed.branch.branchId, reason }, "saga aborting");
      const moved = await transition(ctx, tx, "submitted", {
        status: "aborting",
        failedBranchId: failed.branch.branchId,
        failureReason: reason,
      });
      if (!moved) return { kind: "yielded" };
      continue;
    }
    if (lastError || stalled !== tx.stalled) {
      if (stalled && !tx.stalled) log.warn({ lastError }, "transaction stalled: retries past the policy; still retrying at the cap");
      const changes = { lastError: lastError || tx.lastError, stalled, updatedAt: Date.now() };
      if (!(await ctx.store.updateTransaction(gid, { owner: ctx.coordinatorId }, changes))) return { kind: "yielded" };
      if (stalled !== tx.stalled) ctx.events.changed(gid);
    }
  }
}

async function transition(
  ctx: RunnerContext,
  tx: TransactionRecord,
  from: TransactionStatus,
  changes: { status: TransactionStatus; failedBranchId?: string; failureReason?: string },
): Promise<boolean> {
  const moved = await ctx.store.updateTransaction(tx.gid, { statuses: [from], owner: ctx.coordinatorId }, { ...changes, updatedAt: Date.now() });
  if (moved) ctx.events.changed(tx.gid);
  return moved;
}

async function finish(ctx: RunnerContext, tx: TransactionRecord, from: TransactionStatus, to: "succeeded" | "failed"): Promise<boolean> {
  const now = Date.now();
  const moved = await ctx.store.updateTransaction(
    tx.gid,
    { statuses: [from], owner: ctx.coordinatorId },
    { status: to, finishedAt: now, updatedAt: now, nextAttemptAt: null, owner: null, leaseUntil: null, stalled: false },
  );
  if (moved) {
    ctx.logger.info({ gid: tx.gid, status: to }, "saga finished");
    ctx.events.changed(tx.gid);
  }
  return moved;
}

/** Hands the transaction back to the store, due at `until`, for whichever coordinator polls first. */
async function release(ctx: RunnerContext, tx: TransactionRecord, until: number): Promise<RunResult> {
  await ctx.store.updateTransaction(tx.gid, { owner: ctx.coordinatorId }, { nextAttemptAt: until, owner: null, leaseUntil: null });
  return { kind: "waiting", until };
}
