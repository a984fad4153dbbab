import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { openStore } from "../../server/store/index.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

const backend = sqliteBackend();
const svc = new TestBranchService();
afterAll(async () => {
  await svc.close();
  await backend.cleanup();
});

it("answers in-flight calls before stopping and leaves unfinished work for recovery", async () => {
  await svc.listenHttp();
  svc.on("/pending", () => ({ status: 425 }));
  const store = await backend.freshUrl();
  const coordinator = await startTestCoordinator(store, { shutdown: { graceMs: 3000 } });
  const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
  const inFlight = client.submit(
    { gid: "stop-1", mode: Mode.SAGA, wait: true, steps: [{ action: svc.httpUrl("/pending"), compensate: svc.httpUrl("/undo") }] },
    { timeoutMs: 10_000 },
  );
  // The saga is running and the Submit waiting on it once the branch has been called.
  await waitUntil(async () => svc.callsTo("/pending", "stop-1").length > 0, "the saga to call its branch");
  const stopped = coordinator.stop();
  const { transaction } = await inFlight;
  await stopped;
  expect(transaction?.status).toBe(TransactionStatus.SUBMITTED);
  await expect(client.newGid({})).rejects.toThrow();

  const reopened = await openStore({ url: store, poolSize: 1 });
  const row = (await reopened.getTransaction("stop-1"))?.transaction;
  await reopened.close();
  expect(row?.status).toBe("submitted");
  expect(row?.owner).toBeNull(); // handed back: due for whichever coordinator polls next
  expect(row?.nextAttemptAt).not.toBeNull();
});
