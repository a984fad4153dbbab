import type { ServiceImpl } from "@connectrpc/connect";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { notImplementedYet } from "./errors.js";

const LATER = "the operations milestone";

/** AdminService: every RPC answers UNIMPLEMENTED until its milestone lands. */
export function createAdminService(): ServiceImpl<typeof AdminService> {
  const unimplemented = (method: string) => async () => {
    throw notImplementedYet(`accord.v1.AdminService/${method}`, LATER);
  };
  return {
    retryTransaction: unimplemented("RetryTransaction"),
    failTransaction: unimplemented("FailTransaction"),
    skipBranch: unimplemented("SkipBranch"),
    setLogLevel: unimplemented("SetLogLevel"),
    getConfig: unimplemented("GetConfig"),
  };
}
