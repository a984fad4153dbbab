import type { BranchRecord } from "../store/index.js";

/**
 * Which SAGA operations may run now: pure functions over the stored branches. A sequential saga
 * is the DAG where each action depends on the previous one, so one algorithm serves both forms.
 */
export interface SagaPlan {
  actions: Map<string, BranchRecord>;
  compensations: Map<string, BranchRecord>;
  /** branchId -> branchIds whose actions must succeed first */
  dependsOn: Map<string, string[]>;
  /** Branch ids in submitted order. */
  order: string[];
}

const done = (b: BranchRecord | undefined) => b !== undefined && (b.status === "succeeded" || b.status === "skipped");

export function buildSagaPlan(branches: readonly BranchRecord[], concurrent: boolean): SagaPlan {
  const actions = new Map<string, BranchRecord>();
  const compensations = new Map<string, BranchRecord>();
  for (const b of branches) {
    if (b.op === "action") actions.set(b.branchId, b);
    else if (b.op === "compensate") compensations.set(b.branchId, b);
  }
  const order = [...actions.values()].sort((a, b) => a.seq - b.seq).map((b) => b.branchId);
  const dependsOn = new Map<string, string[]>();
  order.forEach((id, i) => {
    const previous = order[i - 1];
    dependsOn.set(id, concurrent ? actions.get(id)!.after : previous === undefined ? [] : [previous]);
  });
  return { actions, compensations, dependsOn, order };
}

export function allActionsDone(plan: SagaPlan): boolean {
  return plan.order.every((id) => done(plan.actions.get(id)));
}

/** Pending actions whose prerequisites all succeeded. */
export function runnableActions(plan: SagaPlan): BranchRecord[] {
  return plan.order
    .filter((id) => plan.actions.get(id)!.status === "pending")
    .filter((id) => plan.dependsOn.get(id)!.every((dep) => done(plan.actions.get(dep))))
    .map((id) => plan.actions.get(id)!);
}

/**
 * Branches whose action ran or may have run: it has a result, it was attempted (attempts, or an
 * error recorded: an operator's RetryTransaction resets the attempts but keeps the error), or it
 * was runnable (a call may have been in flight when a coordinator died before recording it).
 * Compensating one whose action never ran is safe: the barrier makes it a null compensation.
 */
export function branchesToCompensate(plan: SagaPlan): Set<string> {
  return new Set(
    plan.order.filter((id) => {
      const action = plan.actions.get(id)!;
      if (action.status !== "pending" || action.attempts > 0 || action.lastError !== "") return true;
      return plan.dependsOn.get(id)!.every((dep) => done(plan.actions.get(dep)));
    }),
  );
}

/**
 * Compensations that may run now: needed, not yet done, and every needed branch that depended on
 * this one is already compensated (reverse order).
 */
export function runnableCompensations(plan: SagaPlan, needed: Set<string>): BranchRecord[] {
  const dependents = (id: string) => plan.order.filter((other) => needed.has(other) && plan.dependsOn.get(other)!.includes(id));
  return [...plan.order]
    .reverse()
    .filter((id) => needed.has(id) && !done(plan.compensations.get(id)))
    .filter((id) => dependents(id).every((d) => done(plan.compensations.get(d))))
    .map((id) => plan.compensations.get(id)!);
}

export function allCompensationsDone(plan: SagaPlan, needed: Set<string>): boolean {
  return [...needed].every((id) => done(plan.compensations.get(id)));
}
