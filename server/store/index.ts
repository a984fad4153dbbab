export type { DeletedRows, Store } from "./store.js";
export * from "./records.js";
export { openStore, type StoreObserver, type StoreSettings } from "./open-store.js";
export type { RequestResult, WriteOp, WriteOutcome } from "./write-ops.js";
