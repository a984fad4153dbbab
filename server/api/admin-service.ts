import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { LOG_LEVELS, redactedConfig, type AccordConfig, type LogLevel } from "../config.js";
import { InvalidInputError, type CommandResult, type Commands, type Operator } from "../engine/commands/index.js";
import { callerIdentity } from "../security/identity.js";
import type { Store } from "../store/index.js";
import { branchOps } from "./enum-mapping.js";
import { transactionNotFound } from "./errors.js";
import { toTransaction } from "./transaction-mapper.js";

/** The running log level, as the coordinator keeps it (it may also change on a config reload). */
export interface LogLevelControl {
  current(): string;
  set(level: LogLevel): void;
}

export interface AdminServiceDependencies {
  store: Store;
  commands: Commands;
  logger: Logger;
  logLevel: LogLevelControl;
  /** The effective configuration now. */
  config: () => AccordConfig;
  /** Takes this coordinator out of rotation; resolves with the transactions still running after `waitMs`. */
  drain: (waitMs: number) => Promise<number>;
}

/**
 * AdminService, for operators (authorized separately: security.adminCallers). The transaction
 * actions go through the engine's commands, which record them on the transaction; each is also
 * logged with the caller's identity.
 */
export function createAdminService(deps: AdminServiceDependencies): ServiceImpl<typeof AdminService> {
  const { store, commands, logger } = deps;
  const operatorOf = (context: HandlerContext): Operator => ({ identity: context.values.get(callerIdentity) ?? "" });

  const reply = async ({ gid }: CommandResult) => {
    const [found, actions] = await Promise.all([store.getTransaction(gid), store.getAdminActions(gid)]);
    if (!found) throw transactionNotFound(gid);
    return { transaction: toTransaction(found.transaction, found.branches, actions) };
  };
  const logged = (context: HandlerContext, action: string, details: Record<string, unknown>) =>
    logger.info({ identity: operatorOf(context).identity || "(anonymous)", action, ...details }, "admin action");

  return {
    async retryTransaction(request, context) {
      const result = await commands.retryTransaction({ gid: request.gid, reason: request.reason, operator: operatorOf(context) });
      logged(context, "retry", { gid: result.gid, reason: request.reason });
      return reply(result);
    },

    async failTransaction(request, context) {
      const result = await commands.failTransaction({ gid: request.gid, reason: request.reason, operator: operatorOf(context) });
      logged(context, "fail", { gid: result.gid, reason: request.reason });
      return reply(result);
    },

    async skipBranch(request, context) {
      const op = branchOps.fromProto(request.op);
      const result = await commands.skipBranch({ gid: request.gid, branchId: request.branchId, op, reason: request.reason, operator: operatorOf(context) });
      logged(context, "skip", { gid: result.gid, branchId: request.branchId, op, reason: request.reason });
      return reply(result);
    },

    async setLogLevel(request, context) {
      const level = request.level.trim().toLowerCase();
      if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new InvalidInputError("level", `must be one of ${LOG_LEVELS.join(", ")}`);
      const previousLevel = deps.logLevel.current();
      deps.logLevel.set(level as LogLevel);
      logged(context, "set-log-level", { previousLevel, level });
      return { previousLevel };
    },

    async getConfig() {
      return { configJson: JSON.stringify(redactedConfig(deps.config())) };
    },

    async drain(_request, context) {
      // Answer before the caller's deadline; without one, within the stop grace period.
      const left = context.timeoutMs();
      const waitMs = left === undefined ? deps.config().shutdown.graceMs : Math.max(0, left - Math.min(1000, left * 0.2));
      logged(context, "drain", {});
      return { running: await deps.drain(waitMs) };
    },
  };
}
