import { createClient, type Client, type Transaction } from "@libsql/client";
import mysql from "mysql2/promise";
import { BranchFailure, createMysqlBarrier, createSqliteBarrier, type Barrier } from "../../client/index.js";

/** One statement inside the barrier's local transaction, for either database. */
type Exec = (tx: unknown, sql: string, args: (string | number)[]) => Promise<number>;

/**
 * A bank's own database: accounts with a balance and the amount frozen by TCC tries, plus the
 * SDK's barrier table. The same SQL runs on MariaDB (mysql2) and SQLite (libsql).
 */
export interface Ledger {
  barrier: Barrier<unknown>;
  /** Moves money inside the barrier's transaction; refuses (BranchFailure) an overdraft. */
  add(tx: unknown, account: string, amount: number): Promise<void>;
  /** TCC try of a debit: freezes the amount if the balance allows it. */
  freeze(tx: unknown, account: string, amount: number): Promise<void>;
  /** TCC confirm (spend the frozen amount) or cancel (give it back). */
  unfreeze(tx: unknown, account: string, amount: number, spend: boolean): Promise<void>;
  balances(): Promise<Record<string, { balance: number; frozen: number }>>;
  close(): Promise<void>;
}

const SCHEMA = "CREATE TABLE IF NOT EXISTS accounts (id VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL, frozen BIGINT NOT NULL)";

function ledgerOver(barrier: Barrier<unknown>, exec: Exec, query: () => Promise<{ id: string; balance: number; frozen: number }[]>, close: () => Promise<void>): Ledger {
  return {
    barrier,
    async add(tx, account, amount) {
      const changed = await exec(tx, "UPDATE accounts SET balance = balance + ? WHERE id = ? AND balance + ? >= 0", [amount, account, amount]);
      if (changed === 0) throw new BranchFailure(`insufficient funds in ${account}`);
    },
    async freeze(tx, account, amount) {
      const changed = await exec(tx, "UPDATE accounts SET balance = balance - ?, frozen = frozen + ? WHERE id = ? AND balance >= ?", [amount, amount, account, amount]);
      if (changed === 0) throw new BranchFailure(`insufficient funds in ${account}`);
    },
    async unfreeze(tx, account, amount, spend) {
      await exec(tx, `UPDATE accounts SET frozen = frozen - ?${spend ? "" : ", balance = balance + ?"} WHERE id = ?`, spend ? [amount, account] : [amount, amount, account]);
    },
    async balances() {
      return Object.fromEntries((await query()).map((r) => [r.id, { balance: Number(r.balance), frozen: Number(r.frozen) }]));
    },
    close,
  };
}

export async function openMysqlLedger(url: string, accounts: Record<string, number>): Promise<Ledger> {
  const pool = mysql.createPool({ uri: url, connectionLimit: 20 });
  await pool.query(SCHEMA);
  for (const [id, balance] of Object.entries(accounts)) await pool.query("INSERT IGNORE INTO accounts VALUES (?, ?, 0)", [id, balance]);
  const barrier = createMysqlBarrier(pool);
  await barrier.createTable();
  const exec: Exec = async (tx, sql, args) => ((await (tx as mysql.PoolConnection).query(sql, args))[0] as mysql.ResultSetHeader).affectedRows;
  const query = async () => (await pool.query("SELECT id, balance, frozen FROM accounts"))[0] as { id: string; balance: number; frozen: number }[];
  return ledgerOver(barrier as Barrier<unknown>, exec, query, () => pool.end());
}

export async function openSqliteLedger(path: string, accounts: Record<string, number>): Promise<Ledger> {
  const client: Client = createClient({ url: `file:${path}`, timeout: 5000 });
  await client.execute("PRAGMA journal_mode = WAL");
  await client.execute(SCHEMA);
  for (const [id, balance] of Object.entries(accounts)) await client.execute({ sql: "INSERT OR IGNORE INTO accounts VALUES (?, ?, 0)", args: [id, balance] });
  const barrier = createSqliteBarrier(client);
  await barrier.createTable();
  const exec: Exec = async (tx, sql, args) => (await (tx as Transaction).execute({ sql, args })).rowsAffected;
  const query = async () => (await client.execute("SELECT id, balance, frozen FROM accounts")).rows as unknown as { id: string; balance: number; frozen: number }[];
  return ledgerOver(barrier as Barrier<unknown>, exec, query, async () => client.close());
}
