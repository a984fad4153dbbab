import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createAccordClient, TransactionStatus, type AccordClient } from "../../client/index.js";
import { startBankService } from "../../examples/bank/bank-service.js";
import { openMysqlLedger, type Ledger } from "../../examples/bank/ledger.js";
import { transfers } from "../../examples/bank/transfers.js";
import { startCoordinatorProcess } from "../support/coordinator-process.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { startMariadb, type ThrowawayMariadb } from "../support/mariadb.js";
import { countFinal, expectBooksBalance, waitForAllFinal } from "../support/bank-books.js";
import { waitUntil } from "../support/wait-until.js";

// 3 coordinators on one MariaDB, found through etcd, under a steady bounded load of SAGA and TCC
// transfers, while coordinators are killed with SIGKILL and restarted, MariaDB is stopped and
// restarted, and a bank answers 5xx or hangs for a while. At the end every accepted transaction
// is final and the money adds up.
//
// Nothing here depends on how fast the machine is: the chaos runs a fixed number of rounds, each
// waiting (with generous bounds) for the load to make progress or for the fault to be seen, and the
// load runs until the chaos is over and a fixed number of transfers has started.
const ROUNDS = 7;
const COORDINATORS = 3;
const WORKERS = 6;
/** Transfers that must end (answered or refused) between two kills: the cluster works in between. */
const PROGRESS_PER_ROUND = 20;
/** The load starts at least this many transfers, and goes on until the chaos is over. */
const MIN_TRANSFERS = 300;
/** Bounds of the load loop, whatever happens: a count and a generous time. */
const MAX_TRANSFERS = 5000;
const LOAD_MAX_MS = 180_000;
/** Generous bound for any one thing the chaos waits for. */
const WAIT_MS = 60_000;
/** Calls bank B must have answered 5xx (then hung on) before it heals. */
const FAULTY_CALLS = 10;
/** The database stays down at least this long: past the engine lease (1 s), so leases lapse meanwhile. */
const OUTAGE_MIN_MS = 2000;
/** Pause between a worker's transfers, so the load is steady across the whole chaos period. */
const PACE_MS = 100;

let mariadb: ThrowawayMariadb;
let etcd: ThrowawayEtcd;
let ledgerA: Ledger;
let ledgerB: Ledger;
const closers: (() => unknown)[] = [];

beforeAll(async () => {
  [mariadb, etcd] = await Promise.all([startMariadb(), startEtcd()]);
  const db = async () => {
    const name = `bank_${randomBytes(4).toString("hex")}`;
    const admin = await mysql.createConnection({ uri: mariadb.url("") });
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    return mariadb.url(name);
  };
  ledgerA = await openMysqlLedger(await db(), Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`a${i}`, 1000])));
  ledgerB = await openMysqlLedger(await db(), Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`b${i}`, 1000])));
}, 180_000); // starts MariaDB and etcd: generous for a busy machine
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await ledgerA?.close();
  await ledgerB?.close();
  await etcd?.stop();
  await mariadb?.stop();
});

it("keeps every accepted transaction and conserves money through crashes and outages", { timeout: 360_000 }, async () => {
  const store = mariadb.url("accord");
  const coordinatorArgs = (i: number) => [
    "--engine-coordinator-id", `fault-${i}`,
    "--cluster-etcd-endpoints", etcd.endpoint,
    "--cluster-lease-ttl-seconds", "2",
    "--engine-retry-max-ms", "300",
    "--engine-branch-timeout-ms", "1000",
  ];
  type Proc = Awaited<ReturnType<typeof startCoordinatorProcess>>;
  const procs: (Proc | undefined)[] = [];
  for (let i = 0; i < COORDINATORS; i++) procs[i] = await startCoordinatorProcess(store, coordinatorArgs(i));
  closers.push(async () => {
    for (const p of procs) if (p && p.child.exitCode === null && p.child.signalCode === null) (p.child.kill("SIGTERM"), await p.exited);
  });

  // Bank B misbehaves on demand: 5xx, or hanging past the branch timeout. It counts the calls it
  // spoiled, so the chaos knows when a fault has really been felt.
  let bankBMode: "ok" | "5xx" | "hang" = "ok";
  const spoiled = { fiveHundreds: 0, hangs: 0 };
  const bankA = await startBankService(ledgerA);
  const bankB = await startBankService(ledgerB, {
    failBefore: () => {
      if (bankBMode !== "5xx") return false;
      spoiled.fiveHundreds++;
      return true;
    },
    hangMs: () => {
      if (bankBMode !== "hang") return 0;
      spoiled.hangs++;
      return 1500;
    },
  });
  closers.push(() => bankA.server.close(), () => bankB.server.close());

  const accord: AccordClient = createAccordClient({ etcd: { endpoints: [etcd.endpoint] }, retries: 12, timeoutMs: 8000 });
  closers.push(() => accord.close());
  const transfer = transfers(accord, { a: { url: bankA.url, ledger: ledgerA }, b: { url: bankB.url } });

  const figures = { submitted: 0, clientErrors: 0, killed: 0, restarted: 0, outages: 0, gids: new Set<string>() };
  const ended = () => figures.submitted + figures.clientErrors;
  const loadDeadline = Date.now() + LOAD_MAX_MS;
  let chaosOver = false;
  let chaosFailed = false;
  let started = 0;
  const worker = async (w: number) => {
    while (!chaosFailed && !(chaosOver && started >= MIN_TRANSFERS) && started < MAX_TRANSFERS && Date.now() < loadDeadline) {
      const n = started++;
      const from = `a${(n * 7 + w) % 10}`;
      const to = `b${(n * 3 + w) % 10}`;
      // Every 25th transfer overdraws, so refusals and rollbacks happen under the chaos too.
      const amount = n % 25 === 0 ? 100_000 : 1 + (n % 5);
      await new Promise((r) => setTimeout(r, PACE_MS));
      try {
        const tx = await (n % 2 ? transfer.tcc : transfer.saga)(from, to, amount);
        figures.gids.add(tx.gid);
        figures.submitted++;
      } catch {
        // A refused try, or a call that failed past its retries: the coordinator still owns
        // whatever it accepted; the end state is checked below.
        figures.clientErrors++;
      }
    }
  };

  /** Waits until `count` more transfers have ended (answered or refused) than when called. */
  const progress = (count: number, what: string) => {
    const target = ended() + count;
    return waitUntil(async () => ended() >= target, `${count} transfers to end ${what}`, WAIT_MS, 50);
  };
  const chaos = async () => {
    for (let round = 1; round <= ROUNDS; round++) {
      // Each round waits as long as it needs: for the load to make progress since the last
      // restart, or, while bank B misbehaves, for enough calls to have met the fault.
      if (round === 6) await waitUntil(async () => spoiled.fiveHundreds >= FAULTY_CALLS, `bank B to answer ${FAULTY_CALLS} calls with 5xx`, WAIT_MS);
      else if (round === 7) await waitUntil(async () => spoiled.hangs >= FAULTY_CALLS, `bank B to hang on ${FAULTY_CALLS} calls`, WAIT_MS);
      else await progress(PROGRESS_PER_ROUND, `before round ${round}`);

      const victim = round % COORDINATORS;
      procs[victim]!.child.kill("SIGKILL");
      await procs[victim]!.exited;
      figures.killed++;
      if (round === 3) {
        // The database goes away until every surviving coordinator sees it gone, and at least
        // past the engine lease.
        const downSince = Date.now();
        await mariadb.pause();
        const alive = procs.filter((_, i) => i !== victim);
        await waitUntil(
          async () => (await Promise.all(alive.map(async (p) => (await fetch(`${p!.url}/healthz`)).status))).every((s) => s === 503),
          "every running coordinator to report the store down",
          WAIT_MS,
          100,
        );
        const left = OUTAGE_MIN_MS - (Date.now() - downSince);
        if (left > 0) await new Promise((r) => setTimeout(r, left));
        await mariadb.resume();
        figures.outages++;
      }
      if (round === 5) bankBMode = "5xx";
      if (round === 6) bankBMode = "hang";
      if (round === 7) bankBMode = "ok";
      procs[victim] = await startCoordinatorProcess(store, coordinatorArgs(victim));
      figures.restarted++;
    }
    // After the last restart, with every fault healed, the cluster keeps finishing transfers.
    await progress(PROGRESS_PER_ROUND, "after the last round");
  };

  await Promise.all([
    chaos().then(
      () => void (chaosOver = true),
      (error: unknown) => {
        chaosFailed = true;
        throw error;
      },
    ),
    ...Array.from({ length: WORKERS }, (_, w) => worker(w)),
  ]);
  bankBMode = "ok";

  // The chaos ran every round, and the load did the work it had to, within its bounds.
  expect(figures).toMatchObject({ killed: ROUNDS, restarted: ROUNDS, outages: 1 });
  expect(spoiled.fiveHundreds).toBeGreaterThanOrEqual(FAULTY_CALLS);
  expect(spoiled.hangs).toBeGreaterThanOrEqual(FAULTY_CALLS);
  expect(started).toBeGreaterThanOrEqual(MIN_TRANSFERS);

  // Every accepted transaction reaches a final state.
  await waitForAllFinal(accord, 90_000);
  for (const gid of figures.gids) {
    const tx = await accord.get(gid);
    expect([TransactionStatus.SUCCEEDED, TransactionStatus.FAILED]).toContain(tx.status);
  }

  const [totalA, totalB] = await expectBooksBalance([ledgerA, ledgerB], 20_000);
  const succeeded = await countFinal(accord, TransactionStatus.SUCCEEDED);
  const failed = await countFinal(accord, TransactionStatus.FAILED);
  console.log(
    `fault suite: ${started} transfers started, ${figures.submitted} answered, ${succeeded} succeeded, ${failed} failed, ` +
      `${figures.clientErrors} client errors, ${figures.killed} coordinators killed and restarted, ` +
      `${figures.outages} database outage, bank B answered ${spoiled.fiveHundreds} calls 5xx and hung on ${spoiled.hangs}; ` +
      `money moved ${10_000 - totalA!}, total ${totalA! + totalB!}`,
  );
  expect(succeeded).toBeGreaterThan(100);
  expect(failed).toBeGreaterThan(0);
});
