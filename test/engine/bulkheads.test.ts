import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { createBranchInvoker } from "../../server/engine/branch-invoker.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// docs/architecture.md, "Bulkheads": a bounded number of calls per branch host and of transactions per coordinator.
const svc = new TestBranchService();
const backend = sqliteBackend();
let inFlight = 0;
let peak = 0;
/** How many calls the limit under test lets in at once: each call is held until that many are in. */
let limit = 1;

beforeAll(async () => {
  await svc.listenHttp();
  svc.on("/slow", () => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    // Held until as many calls as the limit allows are in flight (so reaching the limit does not
    // depend on timing), then a little longer, so that a call the limit should have kept out
    // would arrive while the others are still in.
    const held = waitUntil(async () => inFlight >= limit, `${limit} calls in flight`, 10_000)
      .catch(() => undefined)
      .then(() => new Promise((r) => setTimeout(r, 100)))
      .finally(() => inFlight--);
    return { status: 200, until: held };
  });
});
afterAll(async () => {
  await svc.close();
  await backend.cleanup();
});

it("never has more calls in flight to one host than maxCallsPerHost", async () => {
  peak = 0;
  limit = 2;
  const invoker = createBranchInvoker({ maxCallsPerHost: limit });
  try {
    const outcomes = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        invoker.invoke({ gid: `bh-${i}`, mode: "saga", branchId: "01", op: "action", target: svc.httpUrl("/slow"), payload: new Uint8Array(), traceparent: "", timeoutMs: 5000, fence: 1 }),
      ),
    );
    expect(outcomes.every((o) => o.kind === "success")).toBe(true);
    expect(peak).toBe(2);
  } finally {
    invoker.close();
  }
});

it("runs at most maxRunningTransactions at once and leaves the rest to the poller", async () => {
  peak = 0;
  limit = 1;
  const coordinator = await startTestCoordinator(await backend.freshUrl(), { engine: { maxRunningTransactions: limit } });
  try {
    const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    const gids = Array.from({ length: 4 }, (_, i) => `bulkhead-${Date.now()}-${i}`);
    for (const gid of gids) {
      await client.submit({ gid, mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/slow"), compensate: svc.httpUrl("/undo") }] });
    }
    await waitUntil(async () => {
      const all = await Promise.all(gids.map(async (gid) => (await client.getTransaction({ gid })).transaction?.status));
      return all.every((s) => s === TransactionStatus.SUCCEEDED);
    }, "every saga to finish");
    expect(peak).toBe(1);
  } finally {
    await coordinator.stop();
  }
});
