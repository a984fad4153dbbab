import type { Logger } from "pino";
import type { EngineConfig } from "../config.js";
import type {
  BranchRecord,
  Store,
  TransactionChanges,
  TransactionRecord,
  TransactionStatus,
  TransactionWithBranches,
  WriteOp,
} from "../store/index.js";
import type { BranchInvoker } from "./branch-invoker.js";
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

const FINISHED: RunResult = { kind: "finished" };
const YIELDED: RunResult = { kind: "yielded" };

/**
 * Drives one SAGA as far as it can go now: runs the runnable actions (or compensations), moves
 * the global status with compare-and-set, and stops when the transaction is final or only
 * retries remain (the poller brings it back when they are due).
 *
 * The run holds the lease, so it keeps the state in memory and writes only what recovery needs:
 * a branch's success rides along with the next status write instead of costing a commit of its
 * own (if the coordinator dies first, the branch is simply called again — branches are
 * idempotent by contract).
 */
export async function runSaga(ctx: RunnerContext, gid: string, initial?: TransactionWithBranches): Promise<RunResult> {
  const loaded = initial ?? (await ctx.store.getTransaction(gid));
  if (!loaded) return FINISHED;
  const tx: TransactionRecord = { ...loaded.transaction };
  const branches = loaded.branches.map((b) => ({ ...b }));
  if (tx.status === "succeeded" || tx.status === "failed") return FINISHED;
  if (tx.owner !== ctx.coordinatorId) return YIELDED;

  const log = ctx.logger.child({ gid });
  const policy = effectivePolicy(tx.options, ctx.config);
  const plan = buildSagaPlan(branches, policy.concurrent);
  const unsaved = new Set<BranchRecord>();
  const notBefore = new Map<BranchRecord, number>();

  /** Writes the unsaved branch progress and a CAS on the transaction as one unit. */
  const persist = async (changes: TransactionChanges, expectStatus: boolean): Promise<boolean> => {
    const now = Date.now();
    const ops: WriteOp[] = [...groupBranchWrites(gid, unsaved, tx.status, now)];
    const fullChanges = { ...changes, updatedAt: now };
    ops.push({
      kind: "transaction",
      gid,
      expect: { owner: ctx.coordinatorId, ...(expectStatus ? { statuses: [tx.status] } : {}) },
      changes: fullChanges,
    });
    const outcomes = await ctx.store.write(ops);
    unsaved.clear();
    const moved = outcomes.at(-1) === true;
    if (moved) {
      Object.assign(tx, fullChanges);
      ctx.events.changed(gid, { transaction: { ...tx }, branches: branches.map((b) => ({ ...b })) });
    }
    return moved;
  };

  const release = async (until: number): Promise<RunResult> => {
    await persist({ nextAttemptAt: until, owner: null, leaseUntil: null }, false);
    return { kind: "waiting", until };
  };

  const finish = async (status: "succeeded" | "failed"): Promise<RunResult> => {
    const now = Date.now();
    const done = await persist(
      { status, finishedAt: now, nextAttemptAt: null, owner: null, leaseUntil: null, stalled: false },
      true,
    );
    if (done) log.info({ status }, "saga finished");
    return done ? FINISHED : YIELDED;
  };

  for (;;) {
    if (ctx.shouldYield(gid)) return release(Date.now());
    const now = Date.now();

    if (tx.status === "submitted" && tx.deadlineAt !== null && now >= tx.deadlineAt) {
      const reason = `timeout_to_fail of ${policy.timeoutToFailMs}ms reached before every action succeeded`;
      log.info({ reason }, "saga aborting");
      if (!(await persist({ status: "aborting", failureReason: reason }, true))) return YIELDED;
      continue;
    }

    let candidates: BranchRecord[];
    let needed: Set<string> | undefined;
    if (tx.status === "submitted") {
      if (allActionsDone(plan)) return finish("succeeded");
      candidates = runnableActions(plan);
    } else if (tx.status === "aborting") {
      needed = branchesToCompensate(plan);
      if (allCompensationsDone(plan, needed)) return finish("failed");
      candidates = runnableCompensations(plan, needed);
    } else {
      log.error({ status: tx.status }, "saga in a status the SAGA engine does not drive");
      return release(now + policy.retry.maxMs);
    }

    const due = candidates.filter((b) => (notBefore.get(b) ?? 0) <= now);
    if (due.length === 0) {
      const deadline = tx.status === "submitted" && tx.deadlineAt !== null ? tx.deadlineAt : Infinity;
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
        }),
      ),
    );

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
      // FAILURE is final only for an action; for a compensation it is an error to retry.
      if (outcome.kind === "failure" && branch.op === "action") {
        branch.status = "failed";
        refusal ??= { branch, detail: outcome.detail };
        return;
      }
      if (outcome.kind === "failure") log.warn({ branchId: branch.branchId, op: branch.op, detail: outcome.detail }, "compensation refused; retrying");
      const delay = outcome.kind === "ongoing" ? policy.retry.ongoingMs : backoffMs(branch.attempts, policy.retry);
      notBefore.set(branch, Date.now() + delay);
      lastError = `${branch.branchId}/${branch.op}: ${outcome.detail} (attempt ${branch.attempts})`;
      if (outcome.kind !== "ongoing" && branch.attempts >= policy.retry.maxAttempts) stalled = true;
    });

    if (refusal) {
      const reason = `branch ${refusal.branch.branchId} action refused: ${refusal.detail}`;
      log.info({ branchId: refusal.branch.branchId, reason }, "saga aborting");
      const moved = await persist({ status: "aborting", failedBranchId: refusal.branch.branchId, failureReason: reason }, true);
      if (!moved) return YIELDED;
      continue;
    }
    if (lastError || stalled !== tx.stalled) {
      if (stalled && !tx.stalled) log.warn({ lastError }, "transaction stalled: retries past the policy; still retrying at the cap");
      if (!(await persist({ lastError: lastError || tx.lastError, stalled }, true))) return YIELDED;
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
