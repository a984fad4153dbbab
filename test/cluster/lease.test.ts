import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { TestBranchService } from "../support/branch-service.js";
import { startCoordinatorProcess } from "../support/coordinator-process.js";
import { gate, waitUntil } from "../support/wait-until.js";

const svc = new TestBranchService();
beforeAll(() => svc.listenHttp());
afterAll(() => svc.close());

it("a paused coordinator loses its lease, another finishes the saga, and the first stops when it wakes", { timeout: 180_000 }, async () => {
  const store = `mysql://root@127.0.0.1:${inject("mariadbPort")}/lease_${Date.now()}`;
  // Debug logs: a's "run ended" tells when it is done with the transaction after waking.
  const a = await startCoordinatorProcess(store, ["--engine-coordinator-id", "lease-a", "--log-level", "debug"]);
  const b = await startCoordinatorProcess(store, ["--engine-coordinator-id", "lease-b"]);
  try {
    // a's first call stays in flight until a has woken and seen its lease gone.
    const held = gate();
    svc.on("/slow", (_c, n) => (n === 0 ? { status: 200, until: held.opened } : { status: 200 }));
    const gid = `lease-${Date.now()}`;
    await a.client.submit({
      gid,
      mode: Mode.SAGA,
      steps: [
        { action: svc.httpUrl("/slow"), compensate: svc.httpUrl("/slow-undo") },
        { action: svc.httpUrl("/next"), compensate: svc.httpUrl("/next-undo") },
      ],
    });
    await waitUntil(async () => svc.callsTo("/slow", gid).length === 1, "a to call the slow branch", 60_000);
    a.child.kill("SIGSTOP"); // paused mid-call, holding the lease it can no longer renew

    const done = await waitUntil(async () => {
      const { transaction } = await b.client.getTransaction({ gid });
      return transaction?.status === TransactionStatus.SUCCEEDED ? transaction : undefined;
    }, "b to take over and finish", 60_000);
    expect(done.status).toBe(TransactionStatus.SUCCEEDED);

    a.child.kill("SIGCONT");
    const aLog = () => a.output().stdout.split("\n").filter((line) => line.includes(gid));
    await waitUntil(async () => aLog().some((line) => line.includes("lease lost")), "a to notice its lease is gone", 60_000);
    held.open();
    await waitUntil(async () => aLog().some((line) => line.includes("run ended")), "a's run to end", 60_000);
    // a got its late reply, found the transaction no longer its own, and stopped: no more calls.
    expect(svc.callsTo("/next", gid)).toHaveLength(1);
    expect(svc.calls.filter((c) => c.gid === gid && c.op === "compensate")).toEqual([]);
    expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`, `${gid}/02/action`]);
    expect((await a.client.getTransaction({ gid })).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
  } finally {
    for (const p of [a, b]) {
      p.child.kill("SIGCONT");
      p.child.kill("SIGTERM");
      await p.exited;
    }
  }
});
