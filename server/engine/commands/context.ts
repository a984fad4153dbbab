import type { AccordConfig } from "../../config.js";
import type { TargetPolicy } from "../../security/target-policy.js";
import type { Mode, Store, TransactionWithBranches } from "../../store/index.js";
import type { Engine } from "../engine.js";
import { InvalidInputError, TransactionNotFoundError } from "./errors.js";
import type { RequestIds } from "./request-ids.js";

/** What every command needs. */
export interface CommandContext {
  store: Store;
  engine: Engine;
  config: AccordConfig;
  /** Where branch targets may point. */
  targets: TargetPolicy;
  requestIds: RequestIds;
}

/**
 * What a command did: the transaction it acted on, and its state when the command has it at hand
 * (saving the caller a read). The caller answers with that state, or waits for the final one.
 */
export interface CommandResult {
  gid: string;
  state?: TransactionWithBranches;
}

export async function loadTransaction(store: Store, gid: string): Promise<TransactionWithBranches> {
  const found = await store.getTransaction(gid);
  if (!found) throw new TransactionNotFoundError(gid);
  return found;
}

/** `mode` (undefined when the caller gave none) must be one of `allowed`. */
export function requireMode(mode: Mode | undefined, allowed: readonly Mode[], hint: string): Mode {
  if (!mode || !allowed.includes(mode)) throw new InvalidInputError("mode", hint);
  return mode;
}
