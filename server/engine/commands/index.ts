import { abort, type AbortInput } from "./abort.js";
import { begin, type BeginInput } from "./begin.js";
import type { CommandContext, CommandResult } from "./context.js";
import { registerBranch, type RegisterBranchInput } from "./register-branch.js";
import { RequestIds } from "./request-ids.js";
import { submit, type SubmitInput } from "./submit.js";

export * from "./errors.js";
export type { CommandResult } from "./context.js";
export type { RequestClaim } from "./request-ids.js";
export type { StepInput } from "./records.js";
export type { AbortInput, BeginInput, RegisterBranchInput, SubmitInput };

/**
 * Every change a caller can ask of a transaction. Each way into the coordinator (the Connect API
 * today; DTM's HTTP API, AdminService, the console and the CLI next) calls these, so validation,
 * request ids, leases and status changes live here once. Operator commands (retry now,
 * force-fail, skip a branch) join them here.
 */
export interface Commands {
  begin(input: BeginInput): Promise<CommandResult>;
  submit(input: SubmitInput): Promise<CommandResult>;
  abort(input: AbortInput): Promise<CommandResult>;
  registerBranch(input: RegisterBranchInput): Promise<CommandResult>;
}

export function createCommands(deps: Omit<CommandContext, "requestIds">): Commands {
  const ctx: CommandContext = { ...deps, requestIds: new RequestIds(deps.store) };
  return {
    begin: (input) => begin(ctx, input),
    submit: (input) => submit(ctx, input),
    abort: (input) => abort(ctx, input),
    registerBranch: (input) => registerBranch(ctx, input),
  };
}
