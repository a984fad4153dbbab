import { describeStoreContract } from "./store.contract.js";
import { mysqlBackend } from "../support/stores.js";

describeStoreContract(mysqlBackend());
