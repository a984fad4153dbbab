import http from "node:http";
import { createBranchInvoker } from "../server/engine/branch-invoker.js";
import { runLoad } from "./load.js";

/** The same branch calls made by a bare keep-alive HTTP client and by the engine's invoker. */
export async function measureInvokerOverhead(baseUrl: string, clients: number, durationMs: number) {
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
  { warmupMs: 500 });
  agent.destroy();

  const invoker = createBranchInvoker({ maxCallsPerHost: clients });
  const viaInvoker = await runLoad(clients, durationMs, async (w, i) => {
    const outcome = await invoker.invoke({ gid: `g${w}-${i}`, mode: "saga", branchId: "01", op: "action", target: url.href, payload, traceparent: "", timeoutMs: 10_000 });
    if (outcome.kind !== "success") throw new Error(outcome.kind);
  }, { warmupMs: 500 });
  invoker.close();
  return { clients, bareCallsPerSecond: bare.perSecond, invokerCallsPerSecond: viaInvoker.perSecond, ratio: Math.round((bare.perSecond / viaInvoker.perSecond) * 100) / 100 };
}
