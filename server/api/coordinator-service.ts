import type { ServiceImpl } from "@connectrpc/connect";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { createAbortHandler } from "./abort-handler.js";
import { createBeginHandler } from "./begin-handler.js";
import { RequestIds, type CommandDependencies } from "./command-context.js";
import { createCoordinatorQueries } from "./coordinator-queries.js";
import { createRegisterBranchHandler } from "./register-branch-handler.js";
import { createSubmitHandler } from "./submit-handler.js";
import { createWatchHandler } from "./watch-handler.js";

/** CoordinatorService: each RPC's handler lives in its own module. */
export function createCoordinatorService(deps: CommandDependencies): ServiceImpl<typeof CoordinatorService> {
  const requestIds = new RequestIds(deps.store);
  return {
    ...createCoordinatorQueries(deps.store),
    begin: createBeginHandler(deps, requestIds),
    submit: createSubmitHandler(deps, requestIds),
    abort: createAbortHandler(deps, requestIds),
    registerBranch: createRegisterBranchHandler(deps, requestIds),
    watchTransaction: createWatchHandler(deps.store, deps.engine),
  };
}
