import type { Mode, StatusTransition, TransactionChanges, TransactionStatus, WriteOp } from "../store/index.js";

/**
 * Every status a transaction may move to, per mode: the one place a status change is allowed
 * (docs/architecture.md, "State machines"). Commands and the runner build their compare-and-set
 * writes with transitionOp(), which refuses anything not listed here, so a new way into the
 * coordinator cannot invent a transition.
 *
 * New transactions start in their mode's initial status: a SAGA SUBMITTED (its steps come with
 * Submit), TCC, XA and MSG PREPARED (Begin).
 */
export const TRANSITIONS: Readonly<Record<Mode, Readonly<Partial<Record<TransactionStatus, readonly TransactionStatus[]>>>>> = {
  // Actions run; a refused action or timeout_to_fail turns it to compensation.
  saga: { submitted: ["succeeded", "aborting"], aborting: ["failed"] },
  // Submit confirms every branch, Abort or prepared_timeout cancels every branch.
  tcc: { prepared: ["submitted", "aborting"], submitted: ["succeeded"], aborting: ["failed"] },
  xa: { prepared: ["submitted", "aborting"], submitted: ["succeeded"], aborting: ["failed"] },
  // Nothing runs before Submit (or query_prepared answering SUCCESS), so there is nothing to undo.
  msg: { prepared: ["submitted", "failed"], submitted: ["succeeded"] },
};

export const INITIAL_STATUS: Readonly<Record<Mode, TransactionStatus>> = { saga: "submitted", tcc: "prepared", xa: "prepared", msg: "prepared" };

/** A transition the table does not allow: a bug in the caller, never the user's doing. */
export class IllegalTransitionError extends Error {
  override name = "IllegalTransitionError";
  constructor(mode: Mode, from: TransactionStatus, to: TransactionStatus) {
    super(`a ${mode} transaction cannot go from ${from} to ${to}`);
  }
}

export function canTransition(mode: Mode, from: TransactionStatus, to: TransactionStatus): boolean {
  return TRANSITIONS[mode][from]?.includes(to) ?? false;
}

/** The statuses a transaction of `mode` may reach `to` from. */
export function sourcesOf(mode: Mode, to: TransactionStatus): TransactionStatus[] {
  return (Object.entries(TRANSITIONS[mode]) as [TransactionStatus, readonly TransactionStatus[]][]).filter(([, tos]) => tos.includes(to)).map(([from]) => from);
}

/**
 * The compare-and-set write that moves `gid` from `from` to `to` (and applies `changes`), only
 * while it still is `from` (and, with `owner`, while that coordinator holds its lease).
 */
export function transitionOp(
  gid: string,
  mode: Mode,
  from: TransactionStatus,
  to: TransactionStatus,
  changes: TransactionChanges = {},
  owner?: string,
): Extract<WriteOp, { kind: "transaction" }> {
  if (!canTransition(mode, from, to)) throw new IllegalTransitionError(mode, from, to);
  // The one place a StatusTransition is made: the store applies no other status change.
  const transition = { from, to } as StatusTransition;
  return { kind: "transaction", gid, expect: owner !== undefined ? { owner } : {}, changes, transition };
}
