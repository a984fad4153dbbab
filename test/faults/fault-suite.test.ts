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

// 3 coordinators on one MariaDB, found through etcd, under a steady bounded load of SAGA and TCC
// transfers, while coordinators are killed with SIGKILL and restarted, MariaDB is stopped and
// restarted, and a bank answers 5xx or hangs for a while. At the end every accepted transaction
// is final and the money adds up.
const LOAD_MS = 30_000;
const WORKERS = 6;
const MAX_TRANSFERS = 2000;
/** Pause between a worker's transfers, so the load is steady across the whole chaos period. */
const PACE_MS = 100;
const COORDINATORS = 3;

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
});
afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await ledgerA?.close();
  await ledgerB?.close();
  await etcd?.stop();
  await mariadb?.stop();
});

it("keeps every accepted transaction and conserves money through crashes and outages", { timeout: 170_000 }, async () => {
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

  // Bank B misbehaves on demand: 5xx, or hanging past the branch timeout.
  let bankBMode: "ok" | "5xx" | "hang" = "ok";
  const bankA = await startBankService(ledgerA);
  const bankB = await startBankService(ledgerB, {
    failBefore: () => bankBMode === "5xx",
    hangMs: () => (bankBMode === "hang" ? 1500 : 0),
  });
  closers.push(() => bankA.server.close(), () => bankB.server.close());

  const accord: AccordClient = createAccordClient({ etcd: { endpoints: [etcd.endpoint] }, retries: 12, timeoutMs: 8000 });
  closers.push(() => accord.close());
  const transfer = transfers(accord, { a: { url: bankA.url, ledger: ledgerA }, b: { url: bankB.url } });

  const figures = { submitted: 0, clientErrors: 0, killed: 0, restarted: 0, gids: new Set<string>() };
  const stopAt = Date.now() + LOAD_MS;
  let started = 0;
  const worker = async (w: number) => {
    while (Date.now() < stopAt && started < MAX_TRANSFERS) {
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

  const chaos = async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let round = 0;
    while (Date.now() < stopAt - 3000) {
      await sleep(3000);
      round++;
      const victim = round % COORDINATORS;
      procs[victim]!.child.kill("SIGKILL");
      await procs[victim]!.exited;
      figures.killed++;
      if (round === 3) {
        await mariadb.pause(); // the database goes away for a few seconds
        await sleep(3000);
        await mariadb.resume();
      }
      if (round === 5) bankBMode = "5xx";
      if (round === 6) bankBMode = "hang";
      if (round === 7) bankBMode = "ok";
      procs[victim] = await startCoordinatorProcess(store, coordinatorArgs(victim));
      figures.restarted++;
    }
    bankBMode = "ok";
  };

  await Promise.all([chaos(), ...Array.from({ length: WORKERS }, (_, w) => worker(w))]);

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
      `1 database outage, bank B 5xx and hanging for a while; money moved ${10_000 - totalA!}, total ${totalA! + totalB!}`,
  );
  expect(succeeded).toBeGreaterThan(100);
  expect(failed).toBeGreaterThan(0);
  expect(figures.killed).toBeGreaterThanOrEqual(5);
});
