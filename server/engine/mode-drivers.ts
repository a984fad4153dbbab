import type { BranchOp, BranchRecord, TransactionRecord, TransactionStatus } from "../store/index.js";
import type { EffectivePolicy } from "./policy.js";
import {
  allActionsDone,
  allCompensationsDone,
  branchesToCompensate,
  buildSagaPlan,
  runnableActions,
  runnableCompensations,
} from "./saga-plan.js";

/** What the runner should do next for a transaction, as its mode sees it. */
export type Work =
  | { kind: "finish"; status: "succeeded" | "failed"; reason?: string }
  | { kind: "transition"; to: TransactionStatus; reason: string }
  | { kind: "call"; branches: BranchRecord[] }
  /** MSG: ask query_prepared whether the local transaction committed. */
  | { kind: "query" }
  | { kind: "wait"; until: number };

/** One mode's state machine over the runner's in-memory branch records. */
export interface ModeDriver {
  next(tx: TransactionRecord, now: number): Work;
  /** A FAILURE answer is final only for a SAGA action (TCC's try is the application's call). */
  refusalIsFinal(op: BranchOp): boolean;
}

const done = (b: BranchRecord) => b.status === "succeeded" || b.status === "skipped";

export function driverFor(mode: TransactionRecord["mode"], branches: BranchRecord[], policy: EffectivePolicy): ModeDriver {
  switch (mode) {
    case "saga":
      return sagaDriver(branches, policy);
    case "msg":
      return msgDriver(branches, policy);
    case "tcc":
      return twoPhaseDriver(branches, policy, "confirm", "cancel");
    case "xa":
      return twoPhaseDriver(branches, policy, "commit", "rollback");
  }
}

function sagaDriver(branches: BranchRecord[], policy: EffectivePolicy): ModeDriver {
  const plan = buildSagaPlan(branches, policy.concurrent);
  return {
    refusalIsFinal: (op) => op === "action",
    next(tx, now) {
      if (tx.status === "submitted") {
        if (tx.deadlineAt !== null && now >= tx.deadlineAt) {
          return { kind: "transition", to: "aborting", reason: `timeout_to_fail of ${policy.timeoutToFailMs}ms reached before every action succeeded` };
        }
        return allActionsDone(plan) ? { kind: "finish", status: "succeeded" } : { kind: "call", branches: runnableActions(plan) };
      }
      if (tx.status === "aborting") {
        const needed = branchesToCompensate(plan);
        return allCompensationsDone(plan, needed) ? { kind: "finish", status: "failed" } : { kind: "call", branches: runnableCompensations(plan, needed) };
      }
      // A SAGA is created SUBMITTED; anything else is not for this driver to move.
      return { kind: "wait", until: now + policy.retry.maxMs };
    },
  };
}

/** TCC (confirm/cancel) and XA (commit/rollback): the second phase of every branch at once. */
function twoPhaseDriver(branches: BranchRecord[], policy: EffectivePolicy, commitOp: BranchOp, rollbackOp: BranchOp): ModeDriver {
  const pending = (op: BranchOp) => branches.filter((b) => b.op === op && !done(b));
  return {
    refusalIsFinal: () => false,
    next(tx, now) {
      if (tx.status === "prepared") {
        const deadline = tx.createdAt + policy.preparedTimeoutMs;
        return now >= deadline
          ? { kind: "transition", to: "aborting", reason: `prepared_timeout of ${policy.preparedTimeoutMs}ms passed without Submit` }
          : { kind: "wait", until: deadline };
      }
      if (tx.status === "submitted") {
        const left = pending(commitOp);
        return left.length === 0 ? { kind: "finish", status: "succeeded" } : { kind: "call", branches: left };
      }
      const left = pending(rollbackOp);
      return left.length === 0 ? { kind: "finish", status: "failed" } : { kind: "call", branches: left };
    },
  };
}

/** Two-phase message: back-check while PREPARED past its timeout, then run branches until done. */
function msgDriver(branches: BranchRecord[], policy: EffectivePolicy): ModeDriver {
  const plan = buildSagaPlan(branches, policy.concurrent);
  return {
    refusalIsFinal: () => false,
    next(tx, now) {
      if (tx.status === "prepared") {
        const deadline = tx.createdAt + policy.preparedTimeoutMs;
        return now >= deadline ? { kind: "query" } : { kind: "wait", until: deadline };
      }
      if (tx.status === "submitted") {
        return allActionsDone(plan) ? { kind: "finish", status: "succeeded" } : { kind: "call", branches: runnableActions(plan) };
      }
      // Nothing of an MSG runs before Submit, so there is nothing to undo.
      return { kind: "finish", status: "failed" };
    },
  };
}
