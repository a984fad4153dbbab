import { expect } from "vitest";
import { TransactionStatus, type AccordClient } from "../../client/index.js";
import type { Ledger } from "../../examples/bank/ledger.js";
import { waitUntil } from "./wait-until.js";

/** Waits until no transaction is PREPARED, SUBMITTED or ABORTING any more. */
export async function waitForAllFinal(accord: AccordClient, timeoutMs: number): Promise<void> {
  const open = [TransactionStatus.PREPARED, TransactionStatus.SUBMITTED, TransactionStatus.ABORTING];
  await waitUntil(async () => (await accord.list({ statuses: open, pageSize: 1 })).transactions.length === 0, "every transaction to finish", timeoutMs, 250);
}

/** How many transactions ended in `status` (all pages). */
export async function countFinal(accord: AccordClient, status: TransactionStatus): Promise<number> {
  let total = 0;
  let pageToken = "";
  do {
    const page = await accord.list({ statuses: [status], pageSize: 500, pageToken });
    total += page.transactions.length;
    pageToken = page.nextPageToken;
  } while (pageToken);
  return total;
}

/**
 * The books balance: the money across both banks is what it was, no balance is negative and
 * nothing is left frozen by a TCC try. Resolves with each bank's total.
 */
export async function expectBooksBalance(ledgers: Ledger[], expectedTotal: number): Promise<number[]> {
  const totals: number[] = [];
  for (const ledger of ledgers) {
    const rows = Object.values(await ledger.balances());
    for (const row of rows) {
      expect(row.balance).toBeGreaterThanOrEqual(0);
      expect(row.frozen).toBe(0);
    }
    totals.push(rows.reduce((sum, r) => sum + r.balance + r.frozen, 0));
  }
  expect(totals.reduce((a, b) => a + b, 0)).toBe(expectedTotal);
  return totals;
}
