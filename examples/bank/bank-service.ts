import { createServer, type Server } from "node:http";
import { httpBranchHandler, type BranchInfo } from "../../client/index.js";
import type { Ledger } from "./ledger.js";

export interface Transfer {
  account: string;
  amount: number;
}

export interface BankOptions {
  /** Fault injection for tests: answer 500 before doing the work… */
  failBefore?: () => boolean;
  /** …or after committing it, as if the reply were lost. */
  failAfter?: () => boolean;
  /** …or hang this many milliseconds before answering. */
  hangMs?: () => number;
  /** Loopback port to listen on; 0 (the default) picks a free one. */
  port?: number;
}

/**
 * A bank as a branch service: every operation runs behind the barrier in the bank's own
 * database, so retries, late calls and compensations of calls that never arrived are harmless.
 */
export async function startBankService(ledger: Ledger, options: BankOptions = {}): Promise<{ url: string; server: Server }> {
  const ops: Record<string, (tx: unknown, t: Transfer) => Promise<void>> = {
    "/saga/debit": (tx, t) => ledger.add(tx, t.account, -t.amount),
    "/saga/debit-undo": (tx, t) => ledger.add(tx, t.account, t.amount),
    "/saga/credit": (tx, t) => ledger.add(tx, t.account, t.amount),
    "/saga/credit-undo": (tx, t) => ledger.add(tx, t.account, -t.amount),
    "/tcc/debit-try": (tx, t) => ledger.freeze(tx, t.account, t.amount),
    "/tcc/debit-confirm": (tx, t) => ledger.unfreeze(tx, t.account, t.amount, true),
    "/tcc/debit-cancel": (tx, t) => ledger.unfreeze(tx, t.account, t.amount, false),
    "/tcc/credit-try": async () => {},
    "/tcc/credit-confirm": (tx, t) => ledger.add(tx, t.account, t.amount),
    "/tcc/credit-cancel": async () => {},
    "/msg/credit": (tx, t) => ledger.add(tx, t.account, t.amount),
  };
  const handle = async (path: string, info: BranchInfo, body: Buffer) => {
    if (path === "/msg/query") return ledger.barrier.queryPrepared(info.gid);
    const op = ops[path];
    if (!op) throw new Error(`no such operation ${path}`);
    const hang = options.hangMs?.() ?? 0;
    if (hang > 0) await new Promise((r) => setTimeout(r, hang));
    if (options.failBefore?.()) throw new Error("injected failure before the work");
    const transfer = JSON.parse(body.toString()) as Transfer;
    await ledger.barrier.call(info, (tx) => op(tx, transfer));
    if (options.failAfter?.()) throw new Error("injected failure after the work (reply lost)");
  };
  const server = createServer((req, res) => httpBranchHandler((info, body) => handle(req.url ?? "", info, body))(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject); // e.g. the port is taken
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, server };
}
