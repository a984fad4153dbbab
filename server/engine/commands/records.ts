import { create, toJsonString } from "@bufbuild/protobuf";
import { durationMs } from "@bufbuild/protobuf/wkt";
import { TransactionOptionsSchema, type TransactionOptions } from "../../../gen/accord/v1/transaction_pb.js";
import type { AccordConfig } from "../../config.js";
import type { TargetPolicy } from "../../security/target-policy.js";
import { parseTarget, InvalidTargetError } from "../target.js";
import type { BranchRecord, Mode, TransactionRecord, TransactionWithBranches } from "../../store/index.js";
import { INITIAL_STATUS } from "../transitions.js";
import { InvalidInputError } from "./errors.js";
import { requireBranchId } from "./identifiers.js";
import { validateOptions, type OptionFloors } from "./options.js";

/** One SAGA or MSG step as every API gives it (the proto Step has this shape). */
export interface StepInput {
  /** Empty: the 1-based position, zero-padded ("01"). */
  branchId: string;
  action: string;
  /** SAGA only. */
  compensate: string;
  payload: Uint8Array;
  /** SAGA with options.concurrent: branches that must succeed first. */
  after: readonly string[];
}

/** A branch target: a valid URL of a supported kind, and allowed by the target policy. */
export function requireTarget(value: string, field: string, policy: TargetPolicy): string {
  if (value === "") throw new InvalidInputError(field, "is required");
  let target;
  try {
    target = parseTarget(value);
  } catch (error) {
    if (error instanceof InvalidTargetError) throw new InvalidInputError(field, error.message);
    throw error;
  }
  const refusal = policy.refusal(target.kind === "http" ? target.url : new URL(value));
  if (refusal) throw new InvalidInputError(field, refusal);
  return value;
}

/** Default branch id: the 1-based position, zero-padded to two digits ("01"). */
export const defaultBranchId = (index: number) => String(index + 1).padStart(2, "0");

/** Rejects unknown `after` references and cycles, naming the step. */
function checkDag(ids: string[], steps: readonly StepInput[]): void {
  const known = new Set(ids);
  steps.forEach((step, i) =>
    step.after.forEach((dep, j) => {
      if (!known.has(dep)) throw new InvalidInputError(`steps[${i}].after[${j}]`, `names unknown branch "${dep}"`);
      if (dep === ids[i]) throw new InvalidInputError(`steps[${i}].after[${j}]`, "a branch cannot wait for itself");
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
    throw new InvalidInputError(`steps[${onCycle}].after`, `branch "${ids[onCycle]}" is on a dependency cycle`);
  }
}

interface StepRules {
  /** SAGA steps need a compensation; MSG steps must not have one. */
  compensate: "required" | "forbidden";
  limits: AccordConfig["limits"];
  targets: TargetPolicy;
}

/** Validates steps (SAGA or MSG) and turns them into branch rows: one action, plus a compensate for SAGA. */
export function stepBranches(gid: string, steps: readonly StepInput[], options: TransactionOptions | undefined, rules: StepRules, now: number): BranchRecord[] {
  const { limits } = rules;
  if (steps.length === 0) throw new InvalidInputError("steps", "at least one step is needed");
  if (steps.length > limits.maxBranches) throw new InvalidInputError("steps", `at most ${limits.maxBranches} steps are allowed (got ${steps.length})`);
  const concurrent = options?.concurrent ?? false;
  const ids = steps.map((step, i) => (step.branchId ? requireBranchId(step.branchId, `steps[${i}].branch_id`) : defaultBranchId(i)));
  const seen = new Map<string, number>();
  ids.forEach((id, i) => {
    const first = seen.get(id);
    if (first !== undefined) throw new InvalidInputError(`steps[${i}].branch_id`, `"${id}" is already used by steps[${first}]`);
    seen.set(id, i);
  });
  steps.forEach((step, i) => {
    requireTarget(step.action, `steps[${i}].action`, rules.targets);
    if (rules.compensate === "required") requireTarget(step.compensate, `steps[${i}].compensate`, rules.targets);
    else if (step.compensate) throw new InvalidInputError(`steps[${i}].compensate`, "is not allowed: MSG branches run until they succeed and are never compensated");
    if (step.payload.byteLength > limits.maxPayloadBytes) {
      throw new InvalidInputError(`steps[${i}].payload`, `is ${step.payload.byteLength} bytes; at most ${limits.maxPayloadBytes} are allowed`);
    }
    if (step.after.length > 0 && !concurrent) throw new InvalidInputError(`steps[${i}].after`, "needs options.concurrent = true");
  });
  if (concurrent) checkDag(ids, steps);

  const branch = (step: StepInput, i: number, op: "action" | "compensate"): BranchRecord => ({
    gid,
    branchId: ids[i]!,
    op,
    seq: i,
    target: op === "action" ? step.action : step.compensate,
    payload: step.payload,
    after: op === "action" ? [...step.after] : [],
    status: "pending",
    attempts: 0,
    lastError: "",
    updatedAt: now,
  });
  return steps.flatMap((step, i) =>
    rules.compensate === "required" ? [branch(step, i, "action"), branch(step, i, "compensate")] : [branch(step, i, "action")],
  );
}

/** A new transaction row: unowned, due at `nextAttemptAt` for whichever coordinator claims it. */
export function newTransactionRecord(fields: {
  gid: string;
  mode: Mode;
  options: TransactionOptions | undefined;
  queryPrepared?: string;
  contentHash: string;
  now: number;
  nextAttemptAt: number;
  deadlineAt?: number | null;
}): TransactionRecord {
  return {
    gid: fields.gid,
    mode: fields.mode,
    status: INITIAL_STATUS[fields.mode],
    stalled: false,
    options: toJsonString(TransactionOptionsSchema, fields.options ?? create(TransactionOptionsSchema)),
    queryPrepared: fields.queryPrepared ?? "",
    traceparent: fields.options?.traceparent ?? "",
    lastError: "",
    failedBranchId: "",
    failureReason: "",
    contentHash: fields.contentHash,
    createdAt: fields.now,
    updatedAt: fields.now,
    finishedAt: null,
    nextAttemptAt: fields.nextAttemptAt,
    deadlineAt: fields.deadlineAt ?? null,
    owner: null,
    leaseUntil: null,
    leaseGeneration: 0,
  };
}

/**
 * Validates a SAGA and turns it into the rows to store: the transaction, unowned and due at once
 * (if its coordinator dies, whoever claims it after the lease runs it), and an action and a
 * compensate row per step.
 */
export function sagaRecords(
  input: { gid: string; steps: readonly StepInput[]; options: TransactionOptions | undefined; contentHash: string },
  limits: AccordConfig["limits"],
  targets: TargetPolicy,
  floors: OptionFloors,
  now = Date.now(),
): TransactionWithBranches {
  validateOptions(input.options, floors);
  const branches = stepBranches(input.gid, input.steps, input.options, { compensate: "required", limits, targets }, now);
  const timeoutToFail = input.options?.timeoutToFail;
  const transaction = newTransactionRecord({
    gid: input.gid,
    mode: "saga",
    options: input.options,
    contentHash: input.contentHash,
    now,
    nextAttemptAt: now,
    deadlineAt: timeoutToFail && durationMs(timeoutToFail) > 0 ? now + durationMs(timeoutToFail) : null,
  });
  return { transaction, branches };
}
