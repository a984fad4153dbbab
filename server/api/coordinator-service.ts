import type { ServiceImpl } from "@connectrpc/connect";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { createCommandHandlers, type CommandHandlerDependencies } from "./command-handlers.js";
import { createCoordinatorQueries } from "./coordinator-queries.js";
import { createWatchHandler } from "./watch-handler.js";

/** CoordinatorService: reads from the store, changes through the engine's commands. */
export function createCoordinatorService(deps: CommandHandlerDependencies): ServiceImpl<typeof CoordinatorService> {
  return {
    ...createCoordinatorQueries(deps.store),
    ...createCommandHandlers(deps),
    watchTransaction: createWatchHandler(deps.store, deps.engine),
  };
}
