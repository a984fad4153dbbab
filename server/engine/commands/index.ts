import { abort, type AbortInput } from "./abort.js";
import { begin, type BeginInput } from "./begin.js";
import type { CommandContext, CommandResult } from "./context.js";
import { failTransaction, retryTransaction, skipBranch, type FailInput, type Operator, type RetryInput, type SkipInput } from "./operator.js";
import { registerBranch, type RegisterBranchInput } from "./register-branch.js";
import { RequestIds } from "./request-ids.js";
import { submit, type SubmitInput } from "./submit.js";

export * from "./errors.js";
export type { CommandResult } from "./context.js";
export type { RequestClaim } from "./request-ids.js";
export type { StepInput } from "./records.js";
export type { AbortInput, BeginInput, FailInput, Operator, RegisterBranchInput, RetryInput, SkipInput, SubmitInput };

/**
 * Every change a caller can ask of a transaction. Each way into the coordinator (the Connect API
 * today; DTM's HTTP API, AdminService, the console and the CLI next) calls these, so validation,
 * request ids, leases and status changes live here once.
 */
export interface Commands {
  begin(input: BeginInput): Promise<CommandResult>;
  submit(input: SubmitInput): Promise<CommandResult>;
  abort(input: AbortInput): Promise<CommandResult>;
  registerBranch(input: RegisterBranchInput): Promise<CommandResult>;
  // Operators' commands (operator.ts): each is recorded on the transaction.
  retryTransaction(input: RetryInput): Promise<CommandResult>;
  failTransaction(input: FailInput): Promise<CommandResult>;
  skipBranch(input: SkipInput): Promise<CommandResult>;
}

export function createCommands(deps: Omit<CommandContext, "requestIds">): Commands {
  const ctx: CommandContext = { ...deps, requestIds: new RequestIds(deps.store) };
  return {
    begin: (input) => begin(ctx, input),
    submit: (input) => submit(ctx, input),
    abort: (input) => abort(ctx, input),
    registerBranch: (input) => registerBranch(ctx, input),
    retryTransaction: (input) => retryTransaction(ctx, input),
    failTransaction: (input) => failTransaction(ctx, input),
    skipBranch: (input) => skipBranch(ctx, input),
  };
}
