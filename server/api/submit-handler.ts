import { Code, type HandlerContext } from "@connectrpc/connect";
import type { SubmitRequest } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode } from "../../gen/accord/v1/transaction_pb.js";
import type { AccordConfig } from "../config.js";
import type { Engine } from "../engine/engine.js";
import type { Store, TransactionWithBranches } from "../store/index.js";
import { errorWithReason, invalidArgument, notImplementedYet, transactionNotFound } from "./errors.js";
import { sagaRecords } from "./saga-request.js";
import { toTransaction } from "./transaction-mapper.js";
import { requireGid } from "./validation.js";

export interface SubmitDependencies {
  store: Store;
  engine: Engine;
  config: AccordConfig;
}

/** How long Submit-with-wait may wait: the caller's deadline less a margin to answer in time. */
export function waitBudgetMs(context: HandlerContext, maxWaitMs: number): number {
  const left = context.timeoutMs();
  if (left === undefined) return maxWaitMs;
  return Math.max(0, Math.min(maxWaitMs, left - Math.min(200, left * 0.1)));
}

export function createSubmitHandler({ store, engine, config }: SubmitDependencies) {
  const reply = async (gid: string, wait: boolean, context: HandlerContext, known?: TransactionWithBranches) => {
    const found = wait
      ? await engine.waitForFinal(gid, waitBudgetMs(context, config.engine.maxWaitMs), context.signal, known)
      : await store.getTransaction(gid);
    if (!found) throw transactionNotFound(gid);
    return { transaction: toTransaction(found.transaction, found.branches) };
  };

  return async function submit(request: SubmitRequest, context: HandlerContext) {
    const gid = requireGid(request.gid);
    if (request.requestId.length > 128) throw invalidArgument("request_id", "must be at most 128 characters");
    switch (request.mode) {
      case Mode.SAGA:
        break;
      case Mode.TCC:
      case Mode.MSG:
      case Mode.XA:
        throw notImplementedYet(`accord.v1.CoordinatorService/Submit for ${Mode[request.mode]}`, "TCC, MSG and XA");
      default:
        throw invalidArgument("mode", "must be MODE_SAGA, MODE_TCC, MODE_MSG or MODE_XA");
    }

    const { transaction, branches } = sagaRecords(request, gid, config.limits);
    // Run it here at once when the bulkhead has room; otherwise the poller claims it when due.
    const reserved = engine.reserve();
    if (reserved) {
      transaction.owner = engine.coordinatorId;
      transaction.leaseUntil = transaction.createdAt + config.engine.leaseMs;
    }
    let outcome;
    try {
      outcome = await store.createTransaction(transaction, branches);
    } catch (error) {
      if (reserved) engine.unreserve();
      throw error;
    }
    if (!outcome.created) {
      if (reserved) engine.unreserve();
      if (outcome.existing.contentHash !== transaction.contentHash) {
        throw errorWithReason(Code.AlreadyExists, "GID_CONFLICT", `gid "${gid}" already names a different transaction`, { gid });
      }
      return reply(gid, request.wait, context);
    }
    const created = { transaction, branches };
    if (reserved) engine.runReserved(created);
    if (!request.wait) return { transaction: toTransaction(transaction, branches) };
    return reply(gid, true, context, created);
  };
}
