// The Accord TypeScript SDK: what applications and branch services import.
export { AccordClient, createAccordClient, type CallControl } from "./accord-client.js";
export type { AccordClientOptions, AccordTlsOptions } from "./client-options.js";
export { isRetryable } from "./call-policy.js";
export { discoverCoordinators, type CoordinatorDiscovery, type EtcdDiscoveryOptions } from "./discovery.js";
export { RoutingRuleError, gidPoint, routeFor, type CoordinatorEndpoint, type RoutingRule } from "./routing.js";
export { SagaBuilder, type SagaStep, type SubmitControl, type TransactionInit, type TransactionOptionsInit } from "./saga-builder.js";
export { TwoPhaseContext, TryFailedError, type TwoPhaseBranch, type TwoPhaseInit } from "./two-phase.js";
export { MsgBuilder, type MsgInit, type MsgStep } from "./msg-builder.js";
export {
  BranchFailure,
  BranchOngoing,
  branchInfo,
  grpcStatusFor,
  httpBranchHandler,
  httpStatusFor,
  type BranchInfo,
} from "./branch-handler.js";
export type { PayloadInput } from "./payload.js";
export * from "./barrier/index.js";
export { Mode, TransactionStatus, BranchOp, BranchStatus, type Transaction } from "../gen/accord/v1/transaction_pb.js";
export { createMysqlXa, xaId } from "./xa/mysql-xa.js";
export * from "./conformance/index.js";
