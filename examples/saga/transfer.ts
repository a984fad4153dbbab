// A money transfer between two banks as a SAGA: debit at bank A, credit at bank B.
// Run the coordinator (`npm start`), then `npm run example:saga`.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { startBank } from "./bank-service.js";

const coordinatorUrl = process.env.ACCORD_URL ?? "http://127.0.0.1:7460";
const accord = createClient(CoordinatorService, createConnectTransport({ baseUrl: coordinatorUrl, httpVersion: "1.1" }));

const bankA = await startBank("bank-a", { alice: 100 });
const bankB = await startBank("bank-b", { bob: 0 });
const body = (account: string, amount: number) => new TextEncoder().encode(JSON.stringify({ account, amount }));

async function transfer(amount: number) {
  const { gid } = await accord.newGid({});
  const { transaction } = await accord.submit(
    {
      gid,
      mode: Mode.SAGA,
      wait: true,
      steps: [
        { action: `${bankA.url}/debit`, compensate: `${bankA.url}/debit-undo`, payload: body("alice", amount) },
        { action: `${bankB.url}/credit`, compensate: `${bankB.url}/credit-undo`, payload: body("bob", amount) },
      ],
    },
    { timeoutMs: 10_000 },
  );
  const status = TransactionStatus[transaction?.status ?? 0];
  const why = transaction?.failureReason ? ` (${transaction.failureReason})` : "";
  console.log(`transfer ${amount} alice -> bob: ${status}${why}; alice=${bankA.balances.alice} bob=${bankB.balances.bob}`);
  return transaction?.status;
}

try {
  const ok = await transfer(30); // succeeds
  const refused = await transfer(500); // bank A refuses: nothing moves
  process.exitCode = ok === TransactionStatus.SUCCEEDED && refused === TransactionStatus.FAILED ? 0 : 1;
} finally {
  bankA.server.close();
  bankB.server.close();
}
