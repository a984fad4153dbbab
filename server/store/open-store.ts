import type { GroupCommitObserver } from "./group-commit.js";
import type { Store } from "./store.js";
import type { WriteOp, WriteOutcome } from "./write-ops.js";
import { openMysqlStore } from "./mysql/mysql-store.js";
import { openSqliteStore } from "./sqlite/sqlite-store.js";

export interface StoreSettings {
  /** `file:PATH` (embedded SQLite) or `mysql://user:pass@host:port/db` (MySQL, MariaDB, TiDB). */
  url: string;
  /** Pool size for MySQL. */
  poolSize: number;
  /** MySQL: how long a statement waits for a row lock before it fails (innodb_lock_wait_timeout). */
  lockWaitTimeoutSeconds?: number;
  /** Told when a new MySQL connection could not be set up. */
  onConnectionError?: (error: Error) => void;
  /** Told about every group commit (metrics). */
  observer?: StoreObserver;
}

/** What a store's group commit tells its observer: units are arrays of write ops. */
export type StoreObserver = GroupCommitObserver<WriteOp[], WriteOutcome[]>;

/** Opens the backend the URL names and brings its schema up to date. */
export function openStore(settings: StoreSettings): Promise<Store> {
  if (settings.url.startsWith("file:")) return openSqliteStore(settings.url, settings.observer);
  if (settings.url.startsWith("mysql://")) return openMysqlStore(settings.url, {
      poolSize: settings.poolSize,
      lockWaitTimeoutSeconds: settings.lockWaitTimeoutSeconds ?? 5,
      onConnectionError: settings.onConnectionError,
      observer: settings.observer,
    });
  throw new Error(`unsupported store URL scheme in "${settings.url.split(":")[0]}:"`);
}
