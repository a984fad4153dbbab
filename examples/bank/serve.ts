// The two example banks on fixed loopback ports, for Submits written by hand (curl, buf curl,
// grpcurl, any language's client): bank A holds alice (100) on 127.0.0.1:8081, bank B holds
// bob (0) on 127.0.0.1:8082, each on its own SQLite database in a temp dir that goes away when
// they stop. Every call the coordinator makes is printed with the balances after it.
// Run: `npm run example:bank-services` (BANK_A_PORT / BANK_B_PORT pick other ports); Ctrl-C stops.
import { mkdtempSync, rmSync } from "node:fs";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBankService } from "./bank-service.js";
import { openSqliteLedger, type Ledger } from "./ledger.js";

const port = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${name}: expected a port number, got ${process.env[name]}`);
  return value;
};

const dir = mkdtempSync(join(tmpdir(), "accord-bank-services-"));
const ledgers: Ledger[] = [];
const servers: Server[] = [];

async function bank(label: string, file: string, accounts: Record<string, number>, listenPort: number) {
  const ledger = await openSqliteLedger(join(dir, file), accounts);
  ledgers.push(ledger);
  const { url, server } = await startBankService(ledger, { port: listenPort });
  servers.push(server);
  const show = async () =>
    Object.entries(await ledger.balances())
      .map(([id, { balance, frozen }]) => `${id}=${balance}${frozen ? ` (frozen ${frozen})` : ""}`)
      .join(" ");
  server.on("request", (req: IncomingMessage, res: ServerResponse) =>
    res.on("finish", () => {
      const h = req.headers;
      void show().then((balances) =>
        console.log(`${label}: ${h["accord-op"] ?? "?"} ${req.url} of ${h["accord-gid"] ?? "?"}/${h["accord-branch-id"] || "-"} -> ${res.statusCode}; ${balances}`),
      );
    }),
  );
  console.log(`${label} on ${url}: ${await show()}`);
}

let stopping = false;
async function stop() {
  if (stopping) return;
  stopping = true;
  for (const server of servers) {
    server.close();
    server.closeAllConnections(); // the coordinator's keep-alive connections
  }
  for (const ledger of ledgers) await ledger.close();
  rmSync(dir, { recursive: true, force: true });
}
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());

try {
  await bank("bank A", "bank-a.db", { alice: 100 }, port("BANK_A_PORT", 8081));
  await bank("bank B", "bank-b.db", { bob: 0 }, port("BANK_B_PORT", 8082));
  console.log("ready; Ctrl-C stops both banks and deletes their databases");
} catch (error) {
  console.error(`example bank services: ${(error as Error).message}`);
  await stop();
  process.exitCode = 1;
}
