import http from "node:http";
import { createBranchInvoker } from "../server/engine/branch-invoker.js";
import { runLoad } from "./load.js";

const ROUNDS = 5;

/**
 * The same branch calls made by a bare keep-alive HTTP client and by the engine's invoker, in
 * alternating rounds (the machine's noise moves both alike); the ratio is of the medians.
 */
export async function measureInvokerOverhead(baseUrl: string, clients: number, durationMs: number) {
  const bareRates: number[] = [];
  const invokerRates: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const { bare, viaInvoker } = await oneRound(baseUrl, clients, durationMs / ROUNDS);
    bareRates.push(bare);
    invokerRates.push(viaInvoker);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const bare = median(bareRates);
  const viaInvoker = median(invokerRates);
  return { clients, bareCallsPerSecond: bare, invokerCallsPerSecond: viaInvoker, ratio: Math.round((bare / viaInvoker) * 100) / 100 };
}

async function oneRound(baseUrl: string, clients: number, durationMs: number) {
  const payload = Buffer.from('{"amount":1}');
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const url = new URL(`${baseUrl}/ok-a`);
  const bare = await runLoad(clients, durationMs, () =>
    new Promise<void>((resolve, reject) => {
      const req = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": payload.length } }, (res) => {
        res.resume();
        res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(String(res.statusCode)))));
      });
      req.on("error", reject);
      req.end(payload);
    }),
  { warmupMs: 300 });
  agent.destroy();

  const invoker = createBranchInvoker({ maxCallsPerHost: clients });
  const viaInvoker = await runLoad(clients, durationMs, async (w, i) => {
    const outcome = await invoker.invoke({ gid: `g${w}-${i}`, mode: "saga", branchId: "01", op: "action", target: url.href, payload, traceparent: "", timeoutMs: 10_000, fence: 1 });
    if (outcome.kind !== "success") throw new Error(outcome.kind);
  }, { warmupMs: 300 });
  invoker.close();
  return { bare: bare.perSecond, viaInvoker: viaInvoker.perSecond };
}
