import { afterAll, beforeAll, expect, inject, it } from "vitest";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import { TestBranchService } from "../support/branch-service.js";
import { startCoordinatorProcess } from "../support/coordinator-process.js";
import { waitUntil } from "../support/wait-until.js";

// Two coordinators on one MariaDB; one is paused (SIGSTOP) past its lease and resumed. The other
// must take its work over and keep finishing its own, and the paused one, once it wakes, must not
// call branches for transactions it no longer owns.

const svc = new TestBranchService();
beforeAll(() => svc.listenHttp());
afterAll(() => svc.close());

type Proc = Awaited<ReturnType<typeof startCoordinatorProcess>>;
const storeUrl = (name: string) => `mysql://root@127.0.0.1:${inject("mariadbPort")}/${name}_${Date.now()}`;
const stop = async (procs: Proc[]) => {
  for (const p of procs) {
    p.child.kill("SIGCONT");
    p.child.kill("SIGTERM");
    await p.exited;
  }
};
const leaseLostGids = (p: Proc) => new Set([...p.output().stdout.matchAll(/"gid":"([^"]+)"[^\n]*lease lost/g)].map((m) => m[1]));

it("a coordinator that wakes after losing its leases sends none of the calls queued on its bulkhead, and fences the rest", { timeout: 240_000 }, async () => {
  const store = storeUrl("fence");
  // One call at a time to the branch host, so the transactions queue on A's bulkhead behind the first.
  const a = await startCoordinatorProcess(store, ["--engine-coordinator-id", "fence-a", "--engine-max-calls-per-host", "1", "--log-level", "info"]);
  const b = await startCoordinatorProcess(store, ["--engine-coordinator-id", "fence-b"]);
  try {
    // The first call is answered only once A has woken and found its leases gone.
    let releaseHeld = () => {};
    const heldReply = new Promise<void>((resolve) => (releaseHeld = resolve));
    let held = false;
    svc.on("/fenced", () => {
      if (held) return { status: 200 };
      held = true;
      return { status: 200, until: heldReply };
    });
    const gids = Array.from({ length: 20 }, (_, i) => `fence-${Date.now()}-${i}`);
    for (const gid of gids) {
      await a.client.submit({ gid, mode: Mode.SAGA, steps: [{ action: svc.httpUrl("/fenced"), compensate: svc.httpUrl("/fenced-undo") }] });
    }
    await waitUntil(async () => svc.callsTo("/fenced").length >= 1, "A to call the branch host", 60_000);
    a.child.kill("SIGSTOP");

    await waitUntil(async () => {
      for (const gid of gids) if ((await b.client.getTransaction({ gid })).transaction?.status !== TransactionStatus.SUCCEEDED) return false;
      return true;
    }, "B to take every transaction over and finish it", 60_000);

    a.child.kill("SIGCONT");
    // A learns, transaction by transaction, that its leases are gone (renewal or the check before a call).
    await waitUntil(async () => gids.every((gid) => leaseLostGids(a).has(gid)), "A to notice it lost every lease", 60_000);
    // The slot frees: each of the 19 waiting runs either sends its call (stale) or finds the lease gone.
    releaseHeld();
    const calls = () => svc.callsTo("/fenced").filter((c) => gids.includes(c.gid));
    const notSent = () => (a.output().stdout.match(/not sent/g) ?? []).length;
    await waitUntil(async () => notSent() >= gids.length - 1 || calls().filter((c) => c.fence === 1).length > 1, "A's waiting calls to be sent or dropped", 60_000);

    // Only the call in flight when A was paused left A; every other call came from B, with a higher fence.
    expect(calls().filter((c) => c.fence === 1)).toHaveLength(1);
    for (const gid of gids) {
      const fences = calls().filter((c) => c.gid === gid).map((c) => c.fence);
      expect(fences.every((f) => Number.isInteger(f) && f >= 1), gid).toBe(true);
      // No call with a lower fence after one with a higher fence: what a fencing branch would refuse.
      expect(fences, gid).toEqual([...fences].sort((x, y) => x - y));
      expect(svc.effectsOf(gid)).toEqual([`${gid}/01/action`]);
    }
  } finally {
    await stop([a, b]);
  }
});

it("a coordinator paused mid-load holds nothing the other needs: the other keeps finishing and keeps its leases", { timeout: 300_000 }, async () => {
  const store = storeUrl("pause_load");
  // Leases long enough that a healthy coordinator keeps its own on a busy machine: losing one here
  // must come from the paused peer, not from this machine's speed.
  const lease = ["--engine-lease-ms", "6000"];
  const a = await startCoordinatorProcess(store, ["--engine-coordinator-id", "pause-a", ...lease]);
  const b = await startCoordinatorProcess(store, ["--engine-coordinator-id", "pause-b", ...lease]);
  try {
    const step = () => ({ action: svc.httpUrl("/load"), compensate: svc.httpUrl("/load-undo") });
    const accepted: string[] = [];
    let paused = false;
    let n = 0;
    // Load on A until it is paused; bounded in count and in time, and each call in time.
    const loadUntil = Date.now() + 120_000;
    const worker = async () => {
      while (!paused && n < 2000 && Date.now() < loadUntil) {
        const gid = `pause-a-${Date.now()}-${n++}`;
        try {
          await a.client.submit({ gid, mode: Mode.SAGA, steps: [step(), step()] }, { timeoutMs: 5000 });
          accepted.push(gid);
        } catch {
          // Only while A is paused: such a gid may or may not exist; it is not counted as accepted.
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await waitUntil(async () => accepted.length >= 100, () => `A to accept load (${accepted.length} so far)`, 120_000);
    a.child.kill("SIGSTOP");
    paused = true;

    // While A stays paused, B finishes its own transactions, several at a time.
    const finishedByB: TransactionStatus[] = [];
    const submitToB = async (w: number) => {
      for (let i = 0; i < 10; i++) {
        const gid = `pause-b-${Date.now()}-${w}-${i}`;
        const reply = await b.client.submit({ gid, mode: Mode.SAGA, steps: [step(), step()], wait: true }, { timeoutMs: 60_000 });
        finishedByB.push(reply.transaction!.status);
      }
    };
    await Promise.all([0, 1, 2, 3].map(submitToB));
    expect(finishedByB).toHaveLength(40);
    expect(finishedByB.every((s) => s === TransactionStatus.SUCCEEDED)).toBe(true);
    expect(b.output().stdout.split("\n").filter((l) => l.includes("lease") || l.includes("level\":50")).slice(0, 10)).toEqual([]);

    a.child.kill("SIGCONT");
    await Promise.all(workers);
    // Nothing A accepted is lost: every one ends, whoever finishes it.
    await waitUntil(async () => {
      for (const gid of accepted) if ((await b.client.getTransaction({ gid })).transaction?.status !== TransactionStatus.SUCCEEDED) return false;
      return true;
    }, "every transaction A accepted to succeed", 120_000);
  } finally {
    await stop([a, b]);
  }
});
