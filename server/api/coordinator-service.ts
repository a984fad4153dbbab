import type { ServiceImpl } from "@connectrpc/connect";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import type { Store } from "../store/index.js";
import { createCoordinatorQueries } from "./coordinator-queries.js";
import { notImplementedYet } from "./errors.js";

const unimplemented = (method: string, milestone: string) => async () => {
  throw notImplementedYet(`accord.v1.CoordinatorService/${method}`, milestone);
};

/** CoordinatorService: queries now; the transaction modes arrive milestone by milestone. */
export function createCoordinatorService(store: Store): ServiceImpl<typeof CoordinatorService> {
  return {
    ...createCoordinatorQueries(store),
    begin: unimplemented("Begin", "TCC, MSG and XA"),
    submit: unimplemented("Submit", "the SAGA engine"),
    abort: unimplemented("Abort", "TCC, MSG and XA"),
    registerBranch: unimplemented("RegisterBranch", "TCC, MSG and XA"),
    // eslint-disable-next-line require-yield
    async *watchTransaction() {
      throw notImplementedYet("accord.v1.CoordinatorService/WatchTransaction", "TCC, MSG and XA");
    },
  };
}
