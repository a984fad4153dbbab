import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { promisify } from "node:util";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createAccordClient, TransactionStatus } from "../../client/index.js";
import { startBankService } from "../../examples/bank/bank-service.js";
import { openMysqlLedger, type Ledger } from "../../examples/bank/ledger.js";
import { transfers } from "../../examples/bank/transfers.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { backends } from "../support/stores.js";
import { countFinal, expectBooksBalance, waitForAllFinal } from "../support/bank-books.js";

const exec = promisify(execFile);

/** A small seeded generator, so a failing run can be replayed. */
function random(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe("bank transfer example", () => {
  const [sqlite, mariadb] = backends();

  // Runs npm and tsx in a child process: a few seconds here, far more on a busy machine.
  it("npm run example:bank transfers in SAGA, TCC and MSG form on SQLite banks", { timeout: 120_000 }, async () => {
    const coordinator = await startTestCoordinator(await sqlite!.freshUrl());
    try {
      const { stdout } = await exec("npm", ["run", "--silent", "example:bank"], { env: { ...process.env, ACCORD_URL: coordinator.url } });
      expect(stdout).toContain("saga 30: SUCCEEDED; alice=70 bob=30");
      expect(stdout).toContain("tcc 20: SUCCEEDED; alice=50 bob=50");
      expect(stdout).toContain("msg 10: SUCCEEDED; alice=40 bob=60");
      expect(stdout).toMatch(/saga 500: FAILED \(.*insufficient funds in alice\); alice=40 bob=60/);
    } finally {
      await coordinator.stop();
      await sqlite!.cleanup();
    }
  });

  describe("200 concurrent transfers with injected failures, on MariaDB banks", () => {
    let coordinator: RunningCoordinator;
    let ledgerA: Ledger;
    let ledgerB: Ledger;
    const servers: { close(): void }[] = [];
    const accountsA = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`a${i}`, 100]));
    const accountsB = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`b${i}`, 100]));

    beforeAll(async () => {
      const port = inject("mariadbPort");
      const db = async () => {
        const name = `bank_${randomBytes(4).toString("hex")}`;
        const admin = await mysql.createConnection({ host: "127.0.0.1", port, user: "root" });
        await admin.query(`CREATE DATABASE ${name}`);
        await admin.end();
        return `mysql://root@127.0.0.1:${port}/${name}`;
      };
      ledgerA = await openMysqlLedger(await db(), accountsA);
      ledgerB = await openMysqlLedger(await db(), accountsB);
      coordinator = await startTestCoordinator(await mariadb!.freshUrl(), { engine: { retryMaxMs: 200 } });
    });
    afterAll(async () => {
      servers.forEach((s) => s.close());
      await coordinator.stop();
      await ledgerA.close();
      await ledgerB.close();
    });

    // A fixed 200 transfers, however long they take: ~15 s here, over 30 s beside a busy core.
    it("conserves money: no negative balance, nothing frozen, every transaction final", { timeout: 480_000 }, async () => {
      const chance = random(42);
      const faults = { failBefore: () => chance() < 0.1, failAfter: () => chance() < 0.1 };
      const bankA = await startBankService(ledgerA, faults);
      const bankB = await startBankService(ledgerB, faults);
      servers.push(bankA.server, bankB.server);
      const accord = createAccordClient({ address: coordinator.url, timeoutMs: 30_000 });
      const transfer = transfers(accord, { a: { url: bankA.url, ledger: ledgerA }, b: { url: bankB.url } });
      const modes = ["saga", "tcc", "msg"] as const;
      const pick = random(7);

      const outcomes = await Promise.allSettled(
        Array.from({ length: 200 }, (_, i) => {
          const from = `a${Math.floor(pick() * 5)}`;
          const to = `b${Math.floor(pick() * 5)}`;
          const amount = 1 + Math.floor(pick() * 8);
          return transfer[modes[i % 3]!](from, to, amount);
        }),
      );

      // Every accepted transaction reaches a final state (some replies may have come before the end).
      // Generous: on a busy machine the injected failures retry for a while (bounded, not timed).
      await waitForAllFinal(accord, 300_000);
      const [totalA, totalB] = await expectBooksBalance([ledgerA, ledgerB], 1000);
      const succeeded = await countFinal(accord, TransactionStatus.SUCCEEDED);
      const failed = await countFinal(accord, TransactionStatus.FAILED);
      console.log(`transfers: ${succeeded} succeeded, ${failed} failed, ${outcomes.filter((o) => o.status === "rejected").length} refused at try/local step`);
      expect(succeeded).toBeGreaterThan(50);
      expect(failed).toBeGreaterThan(0);
      // What left bank A arrived at bank B.
      expect(500 - totalA!).toBe(totalB! - 500);
    });
  });
});
