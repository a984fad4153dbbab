export { Barrier, type BarrierDatabase, type BarrierOutcome, type BarrierRow } from "./barrier.js";
export { MYSQL_BARRIER_DDL, SQLITE_BARRIER_DDL } from "./ddl.js";
export { createMysqlBarrier } from "./mysql-barrier.js";
export { createSqliteBarrier } from "./sqlite-barrier.js";
