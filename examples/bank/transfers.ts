import type { AccordClient, Transaction } from "../../client/index.js";
import type { Ledger } from "./ledger.js";

export interface Banks {
  /** Bank A (the payer's bank) base URL and ledger: MSG debits run in its local transaction. */
  a: { url: string; ledger: Ledger };
  b: { url: string };
}

/** A transfer from an account at bank A to one at bank B, in each transaction mode. */
export function transfers(accord: AccordClient, banks: Banks) {
  const body = (account: string, amount: number) => ({ account, amount });
  return {
    saga: (from: string, to: string, amount: number): Promise<Transaction> =>
      accord
        .saga()
        .step({ action: `${banks.a.url}/saga/debit`, compensate: `${banks.a.url}/saga/debit-undo`, payload: body(from, amount) })
        .step({ action: `${banks.b.url}/saga/credit`, compensate: `${banks.b.url}/saga/credit-undo`, payload: body(to, amount) })
        .submit({ wait: true, timeoutMs: 30_000 }),

    tcc: (from: string, to: string, amount: number): Promise<Transaction> =>
      accord.tcc(
        async (t) => {
          await t.branch({ try: `${banks.a.url}/tcc/debit-try`, confirm: `${banks.a.url}/tcc/debit-confirm`, cancel: `${banks.a.url}/tcc/debit-cancel`, payload: body(from, amount) });
          await t.branch({ try: `${banks.b.url}/tcc/credit-try`, confirm: `${banks.b.url}/tcc/credit-confirm`, cancel: `${banks.b.url}/tcc/credit-cancel`, payload: body(to, amount) });
        },
        { wait: true, timeoutMs: 30_000 },
      ),

    /** The debit commits in bank A's database with the message's barrier row; the credit follows. */
    msg: (from: string, to: string, amount: number): Promise<Transaction> =>
      accord
        .msg({ queryPrepared: `${banks.a.url}/msg/query` })
        .step({ action: `${banks.b.url}/msg/credit`, payload: body(to, amount) })
        .run((gid) => banks.a.ledger.barrier.msg(gid, (tx) => banks.a.ledger.add(tx, from, -amount)), { wait: true, timeoutMs: 30_000 }),
  };
}
