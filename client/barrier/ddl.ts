/** The barrier table, for the business's own database. Apply once (or call barrier.createTable()). */
export const MYSQL_BARRIER_DDL = `CREATE TABLE IF NOT EXISTS accord_barrier (
  gid VARCHAR(128) NOT NULL,
  branch_id VARCHAR(64) NOT NULL,
  op VARCHAR(16) NOT NULL,
  reason VARCHAR(16) NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (gid, branch_id, op),
  KEY accord_barrier_created (created_at)
)`;

export const SQLITE_BARRIER_DDL = [
  `CREATE TABLE IF NOT EXISTS accord_barrier (
  gid TEXT NOT NULL,
  branch_id TEXT NOT NULL,
  op TEXT NOT NULL,
  reason TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (gid, branch_id, op)
)`,
  "CREATE INDEX IF NOT EXISTS accord_barrier_created ON accord_barrier (created_at)",
];
