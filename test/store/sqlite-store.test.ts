import { describeStoreContract } from "./store.contract.js";
import { sqliteBackend } from "../support/stores.js";

describeStoreContract(sqliteBackend());
