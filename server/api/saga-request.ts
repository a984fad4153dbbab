import { createHash } from "node:crypto";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { SubmitRequestSchema, type SubmitRequest } from "../../gen/accord/v1/coordinator_pb.js";
import { TransactionOptionsSchema, type Step } from "../../gen/accord/v1/transaction_pb.js";
import type { AccordConfig } from "../config.js";
import { parseTarget, InvalidTargetError } from "../engine/target.js";
import type { BranchRecord, TransactionRecord } from "../store/index.js";
import { invalidArgument } from "./errors.js";
import { validateOptions } from "./options-validation.js";
import { requireBranchId } from "./validation.js";

export function requireTarget(value: string, field: string): string {
  if (value === "") throw invalidArgument(field, "is required");
  try {
    parseTarget(value);
  } catch (error) {
    if (error instanceof InvalidTargetError) throw invalidArgument(field, error.message);
    throw error;
  }
  return value;
}

/** Default branch id: the 1-based position, zero-padded to two digits ("01"). */
export const defaultBranchId = (index: number) => String(index + 1).padStart(2, "0");

/** Rejects unknown `after` references and cycles, naming the step. */
function checkDag(ids: string[], steps: readonly Step[]): void {
  const known = new Set(ids);
  steps.forEach((step, i) =>
    step.after.forEach((dep, j) => {
      if (!known.has(dep)) throw invalidArgument(`steps[${i}].after[${j}]`, `names unknown branch "${dep}"`);
      if (dep === ids[i]) throw invalidArgument(`steps[${i}].after[${j}]`, "a branch cannot wait for itself");
    }),
  );
  // Kahn's algorithm: whatever cannot be ordered is on a cycle.
  const indegree = new Map(ids.map((id, i) => [id, new Set(steps[i]!.after).size]));
  const dependents = new Map<string, string[]>(ids.map((id) => [id, []]));
  steps.forEach((step, i) => new Set(step.after).forEach((dep) => dependents.get(dep)!.push(ids[i]!)));
  const ready = ids.filter((id) => indegree.get(id) === 0);
  let ordered = 0;
  while (ready.length > 0) {
    const id = ready.pop()!;
    ordered++;
    for (const next of dependents.get(id)!) {
      const left = indegree.get(next)! - 1;
      indegree.set(next, left);
      if (left === 0) ready.push(next);
    }
  }
  if (ordered < ids.length) {
    const onCycle = ids.findIndex((id) => indegree.get(id)! > 0);
    throw invalidArgument(`steps[${onCycle}].after`, `branch "${ids[onCycle]}" is on a dependency cycle`);
  }
}

/** What a retried Submit must repeat exactly to count as the same transaction. */
export function contentHash(request: Pick<SubmitRequest, "mode" | "steps" | "options">): string {
  const canonical = create(SubmitRequestSchema, { mode: request.mode, steps: request.steps, options: request.options });
  return createHash("sha256").update(toBinary(SubmitRequestSchema, canonical)).digest("hex");
}

/**
 * Validates a SAGA Submit and turns it into the rows to store: the transaction, unowned and due
 * at once, and an action and a compensate row per step.
 */
export function sagaRecords(
  request: SubmitRequest,
  gid: string,
  limits: AccordConfig["limits"],
  now = Date.now(),
): { transaction: TransactionRecord; branches: BranchRecord[] } {
  const steps = request.steps;
  if (steps.length === 0) throw invalidArgument("steps", "a SAGA needs at least one step");
  if (steps.length > limits.maxBranches) throw invalidArgument("steps", `at most ${limits.maxBranches} steps are allowed (got ${steps.length})`);
  validateOptions(request.options);
  const concurrent = request.options?.concurrent ?? false;

  const ids = steps.map((step, i) => (step.branchId ? requireBranchId(step.branchId, `steps[${i}].branch_id`) : defaultBranchId(i)));
  const seen = new Map<string, number>();
  ids.forEach((id, i) => {
    const first = seen.get(id);
    if (first !== undefined) throw invalidArgument(`steps[${i}].branch_id`, `"${id}" is already used by steps[${first}]`);
    seen.set(id, i);
  });
  steps.forEach((step, i) => {
    requireTarget(step.action, `steps[${i}].action`);
    requireTarget(step.compensate, `steps[${i}].compensate`);
    if (step.payload.byteLength > limits.maxPayloadBytes) {
      throw invalidArgument(`steps[${i}].payload`, `is ${step.payload.byteLength} bytes; at most ${limits.maxPayloadBytes} are allowed`);
    }
    if (step.after.length > 0 && !concurrent) throw invalidArgument(`steps[${i}].after`, "needs options.concurrent = true");
  });
  if (concurrent) checkDag(ids, steps);

  const timeoutToFail = request.options?.timeoutToFail;
  const transaction: TransactionRecord = {
    gid,
    mode: "saga",
    status: "submitted",
    stalled: false,
    options: toJsonString(TransactionOptionsSchema, request.options ?? create(TransactionOptionsSchema)),
    queryPrepared: "",
    traceparent: request.options?.traceparent ?? "",
    lastError: "",
    failedBranchId: "",
    failureReason: "",
    contentHash: contentHash(request),
    createdAt: now,
    updatedAt: now,
    finishedAt: null,
    // Due at once: if the owner dies, whoever claims after the lease runs it.
    nextAttemptAt: now,
    deadlineAt: timeoutToFail && durationMs(timeoutToFail) > 0 ? now + durationMs(timeoutToFail) : null,
    owner: null,
    leaseUntil: null,
  };
  const branch = (step: Step, i: number, op: "action" | "compensate"): BranchRecord => ({
    gid,
    branchId: ids[i]!,
    op,
    seq: i,
    target: op === "action" ? step.action : step.compensate,
    payload: step.payload,
    after: op === "action" ? step.after : [],
    status: "pending",
    attempts: 0,
    lastError: "",
    updatedAt: now,
  });
  return { transaction, branches: steps.flatMap((step, i) => [branch(step, i, "action"), branch(step, i, "compensate")]) };
}
