import mysql from "mysql2/promise";
import { runLoad, type LoadResult } from "./load.js";

/** The database's own commit ceiling: single-row autocommit INSERTs at the given concurrency. */
export async function measureCeiling(url: string, clients: number, durationMs: number): Promise<LoadResult> {
  const pool = mysql.createPool({ uri: url, connectionLimit: clients });
  try {
    await pool.query("CREATE TABLE IF NOT EXISTS bench_ceiling (id BIGINT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL) ENGINE=InnoDB");
    return await runLoad(clients, durationMs, async (w, i) => {
      await pool.query("INSERT INTO bench_ceiling (v) VALUES (?)", [`${w}-${i}`]);
    }, { warmupMs: 500 });
  } finally {
    await pool.end();
  }
}
