import { randomBytes } from "node:crypto";
import type { AdminActionKind, BranchOp, TransactionChanges, TransactionRecord, WriteOp } from "../../store/index.js";
import { isFinal } from "../../store/index.js";
import { transitionOp } from "../transitions.js";
import { loadTransaction, type CommandContext, type CommandResult } from "./context.js";
import { BranchStateError, InvalidInputError, WrongStatusError } from "./errors.js";
import { requireBranchId, requireGid } from "./identifiers.js";

// Operator commands (AdminService, and later the console and the CLI): each records who did what
// and why on the transaction, in the same unit as its effect, and takes the lease away from
// whoever runs the transaction so the next run starts from what the operator decided.

/** Who asks: the caller's certificate identity ("" for a caller without one). */
export interface Operator {
  identity: string;
}

export interface RetryInput {
  gid: string;
  reason: string;
  operator: Operator;
}

export interface FailInput {
  gid: string;
  reason: string;
  operator: Operator;
}

export interface SkipInput {
  gid: string;
  branchId: string;
  op: BranchOp | undefined;
  reason: string;
  operator: Operator;
}

const MAX_REASON = 1024;

function checkReason(reason: string, required: boolean): string {
  if (required && reason.trim() === "") throw new InvalidInputError("reason", "is required: say why, it is recorded on the transaction");
  if (reason.length > MAX_REASON) throw new InvalidInputError("reason", `must be at most ${MAX_REASON} characters`);
  return reason;
}

/**
 * Records what the operator did, once it took effect: a separate, later write, so a command that
 * lost a race leaves no record of something that did not happen (a crash in between leaves the
 * effect without its record; the "admin action" log line is written either way).
 */
async function record(ctx: CommandContext, gid: string, kind: AdminActionKind, input: { reason: string; operator: Operator }, now: number, branch?: { branchId: string; op: BranchOp }) {
  await ctx.store.write([
    {
      kind: "adminAction",
      action: { id: randomBytes(12).toString("hex"), gid, action: kind, branchId: branch?.branchId ?? "", op: branch?.op ?? "", identity: input.operator.identity, reason: input.reason, at: now },
    },
  ]);
}

/**
 * The changes that take a transaction from whoever runs it and make it due now. A run on this
 * coordinator is stopped at once (revoke). A run elsewhere can no longer renew its lease and
 * stops within a third of a lease; until its lease would have ended nobody claims the
 * transaction, so two runs never overlap.
 */
function handBack(ctx: CommandContext, tx: TransactionRecord, now: number): TransactionChanges {
  const runsHere = tx.owner === ctx.engine.coordinatorId && ctx.engine.revoke(tx.gid);
  const leaseLeft = !runsHere && tx.leaseUntil !== null && tx.leaseUntil > now;
  return { owner: null, leaseUntil: leaseLeft ? tx.leaseUntil : null, nextAttemptAt: now, updatedAt: now };
}

/** A compare-and-set lost to a concurrent status change: say what the transaction is now. */
async function lostRace(ctx: CommandContext, gid: string, action: string): Promise<never> {
  const current = await loadTransaction(ctx.store, gid);
  throw new WrongStatusError(gid, current.transaction.status, action);
}

/**
 * RetryTransaction: due now, the backoff of its pending operations reset (their attempts; the
 * recorded error stays, as evidence an action may have run), stalled cleared.
 */
export async function retryTransaction(ctx: CommandContext, input: RetryInput): Promise<CommandResult> {
  const gid = requireGid(input.gid);
  checkReason(input.reason, false);
  const { transaction: tx, branches } = await loadTransaction(ctx.store, gid);
  if (isFinal(tx.status)) throw new WrongStatusError(gid, tx.status, "retried");
  const now = Date.now();
  const attempted = branches.filter((b) => b.status === "pending" && b.attempts > 0).map((b) => ({ branchId: b.branchId, op: b.op }));
  const ops: WriteOp[] = [
    ...(attempted.length > 0 ? [{ kind: "branches" as const, gid, keys: attempted, statuses: [tx.status], changes: { attempts: 0, updatedAt: now } }] : []),
    { kind: "transaction", gid, expect: { statuses: [tx.status] }, changes: { ...handBack(ctx, tx, now), stalled: false } },
  ];
  const outcomes = await ctx.store.write(ops);
  if (outcomes.at(-1) !== true) await lostRace(ctx, gid, "retried");
  await record(ctx, gid, "retry", input, now);
  ctx.engine.events.changed(gid);
  return { gid };
}

/** The status FailTransaction moves `tx` to, or why it cannot; undefined when it is already rolling back. */
function failureTarget(tx: TransactionRecord): "aborting" | "failed" | undefined {
  const begun = "failed once its second phase has begun: its operations must finish (SkipBranch one completed by hand)";
  switch (tx.status) {
    case "aborting":
    case "failed":
      return undefined;
    case "succeeded":
      throw new WrongStatusError(tx.gid, tx.status, "failed");
    case "prepared":
      // An MSG ran nothing before Submit; TCC and XA cancel or roll back what was tried.
      return tx.mode === "msg" ? "failed" : "aborting";
    case "submitted":
      if (tx.mode === "saga") return "aborting";
      throw new WrongStatusError(tx.gid, tx.status, begun);
  }
}

/** FailTransaction: roll back as the mode requires; already rolling back or failed is a no-op. */
export async function failTransaction(ctx: CommandContext, input: FailInput): Promise<CommandResult> {
  const gid = requireGid(input.gid);
  const reason = checkReason(input.reason, true);
  const { transaction: tx, branches } = await loadTransaction(ctx.store, gid);
  const to = failureTarget(tx);
  if (!to) return { gid };
  const now = Date.now();
  const failureReason = `failed by an operator: ${reason}`;
  const ending: TransactionChanges = to === "failed" ? { finishedAt: now, nextAttemptAt: null } : {};
  // A coordinator running the SAGA keeps its successes in memory until its next write, which the
  // transition makes fail: mark every pending action as one that may have run, so the rollback
  // compensates them all (a compensation whose action never ran is a null compensation).
  const pendingActions = tx.mode === "saga" ? branches.filter((b) => b.op === "action" && b.status === "pending").map((b) => ({ branchId: b.branchId, op: b.op })) : [];
  const ops: WriteOp[] = [
    ...(pendingActions.length > 0
      ? [{ kind: "branches" as const, gid, keys: pendingActions, statuses: [tx.status], changes: { lastError: "may have run: an operator failed the transaction while it ran", updatedAt: now } }]
      : []),
    // No owner expected: the transition takes the transaction from whoever runs it.
    transitionOp(gid, tx.mode, tx.status, to, { ...handBack(ctx, tx, now), ...ending, failureReason }),
  ];
  const outcomes = await ctx.store.write(ops);
  if (outcomes.at(-1) !== true) await lostRace(ctx, gid, "failed");
  await record(ctx, gid, "fail", input, now);
  if (to === "failed") ctx.engine.finishedByCommand(tx, "failed", now);
  ctx.engine.events.changed(gid);
  return { gid };
}

/** SkipBranch: one pending operation is marked SKIPPED (done by hand) and the transaction moves on. */
export async function skipBranch(ctx: CommandContext, input: SkipInput): Promise<CommandResult> {
  const gid = requireGid(input.gid);
  const branchId = requireBranchId(input.branchId, "branch_id");
  if (!input.op) throw new InvalidInputError("op", "is required: the operation to skip (e.g. BRANCH_OP_COMPENSATE)");
  const op = input.op;
  checkReason(input.reason, true);
  const { transaction: tx, branches } = await loadTransaction(ctx.store, gid);
  if (isFinal(tx.status)) throw new WrongStatusError(gid, tx.status, "changed");
  const branch = branches.find((b) => b.branchId === branchId && b.op === op);
  if (!branch) throw new InvalidInputError("branch_id", `"${gid}" has no ${op} operation for branch "${branchId}"`);
  if (branch.status !== "pending") throw new BranchStateError(gid, branchId, op, branch.status);
  const now = Date.now();
  const outcomes = await ctx.store.write([
    { kind: "branches", gid, keys: [{ branchId, op }], statuses: [tx.status], changes: { status: "skipped", lastError: `skipped by an operator: ${input.reason}`, updatedAt: now } },
    { kind: "transaction", gid, expect: { statuses: [tx.status] }, changes: { ...handBack(ctx, tx, now), stalled: false } },
  ]);
  if (outcomes[0] !== true) {
    // Not skipped: the operation ended meanwhile, or the transaction moved on.
    const current = await loadTransaction(ctx.store, gid);
    const latest = current.branches.find((b) => b.branchId === branchId && b.op === op);
    if (latest && latest.status !== "pending") throw new BranchStateError(gid, branchId, op, latest.status);
    throw new WrongStatusError(gid, current.transaction.status, `given a skipped branch now (it was ${tx.status})`);
  }
  await record(ctx, gid, "skip", input, now, { branchId, op });
  ctx.engine.events.changed(gid);
  return { gid };
}
