import type mysql from "mysql2/promise";

const NAMES = ["Handler_commit", "Com_commit", "Com_insert", "Com_update", "Com_select", "Innodb_data_fsyncs"];

/** MariaDB's global counters, read before and after a scenario to count commits per transaction. */
export async function readCounters(conn: mysql.Connection): Promise<Record<string, number>> {
  const [rows] = await conn.query(`SHOW GLOBAL STATUS WHERE Variable_name IN (${NAMES.map(() => "?").join(",")})`, NAMES);
  return Object.fromEntries((rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name, Number(r.Value)]));
}

export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));
}
