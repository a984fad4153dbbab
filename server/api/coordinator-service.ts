import type { ServiceImpl } from "@connectrpc/connect";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { createCoordinatorQueries } from "./coordinator-queries.js";
import { notImplementedYet } from "./errors.js";
import { createSubmitHandler, type SubmitDependencies } from "./submit-handler.js";

const unimplemented = (method: string, milestone: string) => async () => {
  throw notImplementedYet(`accord.v1.CoordinatorService/${method}`, milestone);
};

/** CoordinatorService: queries and SAGA now; the other modes arrive milestone by milestone. */
export function createCoordinatorService(deps: SubmitDependencies): ServiceImpl<typeof CoordinatorService> {
  return {
    ...createCoordinatorQueries(deps.store),
    begin: unimplemented("Begin", "TCC, MSG and XA"),
    submit: createSubmitHandler(deps),
    abort: unimplemented("Abort", "TCC, MSG and XA"),
    registerBranch: unimplemented("RegisterBranch", "TCC, MSG and XA"),
    // eslint-disable-next-line require-yield
    async *watchTransaction() {
      throw notImplementedYet("accord.v1.CoordinatorService/WatchTransaction", "TCC, MSG and XA");
    },
  };
}
