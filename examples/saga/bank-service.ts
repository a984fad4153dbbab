import { createServer, type Server } from "node:http";

/**
 * A toy bank: one account per name, in memory, exposing a SAGA branch pair per operation.
 * Calls are at-least-once, so each (gid, branch, op) takes effect once (a tiny barrier), an undo
 * whose action never ran does nothing, and an action arriving after its undo is ignored.
 */
export function startBank(name: string, balances: Record<string, number>): Promise<{ server: Server; url: string; balances: Record<string, number> }> {
  const done = new Set<string>();
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const gid = String(req.headers["accord-gid"]);
      const branch = String(req.headers["accord-branch-id"]);
      const { account, amount } = JSON.parse(body) as { account: string; amount: number };
      const [kind, undo] = (req.url ?? "").slice(1).split("-") as [string, string | undefined];
      const key = (op: string) => `${gid}/${branch}/${op}`;
      const sign = kind === "debit" ? -1 : 1;

      if (undo) {
        if (!done.has(key("undo"))) {
          done.add(key("undo"));
          if (done.has(key("do"))) balances[account]! -= sign * amount; // null compensation otherwise
        }
        return res.writeHead(200).end();
      }
      if (done.has(key("do")) || done.has(key("undo"))) return res.writeHead(200).end(); // duplicate or late
      if (kind === "debit" && (balances[account] ?? 0) < amount) {
        return res.writeHead(409).end(`${name}: insufficient funds in ${account}`); // business refusal
      }
      done.add(key("do"));
      balances[account] = (balances[account] ?? 0) + sign * amount;
      res.writeHead(200).end();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = address && typeof address === "object" ? address.port : 0;
      resolve({ server, url: `http://127.0.0.1:${port}`, balances });
    }),
  );
}
