// The bank transfer in SAGA, TCC and MSG form, each bank with its own SQLite database.
// Run the coordinator (`npm start`), then `npm run example:bank`.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccordClient, TransactionStatus } from "../../client/index.js";
import { startBankService } from "./bank-service.js";
import { openSqliteLedger } from "./ledger.js";
import { transfers } from "./transfers.js";

const dir = mkdtempSync(join(tmpdir(), "accord-bank-"));
const ledgerA = await openSqliteLedger(join(dir, "bank-a.db"), { alice: 100 });
const ledgerB = await openSqliteLedger(join(dir, "bank-b.db"), { bob: 0 });
const bankA = await startBankService(ledgerA);
const bankB = await startBankService(ledgerB);
const accord = createAccordClient({ address: process.env.ACCORD_URL ?? "http://127.0.0.1:7460" });
const transfer = transfers(accord, { a: { url: bankA.url, ledger: ledgerA }, b: { url: bankB.url } });

const show = async (label: string, run: () => Promise<{ status: TransactionStatus; failureReason: string }>) => {
  const tx = await run().catch((error: unknown) => ({ status: TransactionStatus.FAILED, failureReason: (error as Error).message }));
  const a = await ledgerA.balances();
  const b = await ledgerB.balances();
  const why = tx.failureReason ? ` (${tx.failureReason})` : "";
  console.log(`${label}: ${TransactionStatus[tx.status]}${why}; alice=${a.alice?.balance} bob=${b.bob?.balance}`);
  return tx.status;
};

try {
  const results = [
    await show("saga 30", () => transfer.saga("alice", "bob", 30)),
    await show("tcc 20", () => transfer.tcc("alice", "bob", 20)),
    await show("msg 10", () => transfer.msg("alice", "bob", 10)),
    await show("saga 500", () => transfer.saga("alice", "bob", 500)),
  ];
  const expected = [TransactionStatus.SUCCEEDED, TransactionStatus.SUCCEEDED, TransactionStatus.SUCCEEDED, TransactionStatus.FAILED];
  process.exitCode = results.every((s, i) => s === expected[i]) ? 0 : 1;
} finally {
  bankA.server.close();
  bankB.server.close();
  await ledgerA.close();
  await ledgerB.close();
  rmSync(dir, { recursive: true, force: true });
}
