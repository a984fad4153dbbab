import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  BranchFailure,
  BranchOngoing,
  createAccordClient,
  createMysqlXa,
  grpcStatusFor,
  httpBranchHandler,
  httpStatusFor,
  TransactionStatus,
  TryFailedError,
  type AccordClient,
  type BranchInfo,
} from "../../client/index.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { freePort } from "../support/free-port.js";
import { backends } from "../support/stores.js";

/** A branch service built with the SDK's helpers; records every call as "gid branch op". */
async function startService(routes: Record<string, (info: BranchInfo, body: Buffer) => Promise<void>>) {
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    const route = routes[req.url ?? ""] ?? (async () => {});
    httpBranchHandler(async (info, body) => {
      calls.push(`${info.gid} ${info.branchId} ${info.op} ${req.url}`);
      await route(info, body);
    })(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { url: (path: string) => `http://127.0.0.1:${port}${path}`, calls, close: () => new Promise((r) => server.close(r)) };
}

it("maps branch outcomes to HTTP and gRPC statuses", () => {
  expect([undefined, new BranchFailure("no"), new BranchOngoing("later"), new Error("boom")].map(httpStatusFor)).toEqual([200, 409, 425, 500]);
  expect([undefined, new BranchFailure("no"), new BranchOngoing("later"), new Error("boom")].map(grpcStatusFor)).toEqual([0, 10, 9, 13]);
});

for (const backend of backends()) {
  describe(`TypeScript SDK against a coordinator (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let accord: AccordClient;
    let svc: Awaited<ReturnType<typeof startService>>;
    const failTry = new Set<string>();

    beforeAll(async () => {
      coordinator = await startTestCoordinator(await backend.freshUrl());
      accord = createAccordClient({ address: coordinator.url, timeoutMs: 5000 });
      svc = await startService({
        "/try": async (info) => {
          if (failTry.has(`${info.gid}/${info.branchId}`)) throw new BranchFailure("insufficient funds");
        },
      });
    });
    afterAll(async () => {
      await coordinator.stop();
      await svc.close();
      await backend.cleanup();
    });

    const callsOf = (gid: string) => svc.calls.filter((c) => c.startsWith(`${gid} `)).map((c) => c.split(" ").slice(1).join(" "));

    it("submits a SAGA built step by step and waits for its end", async () => {
      const tx = await accord
        .saga()
        .step({ action: svc.url("/a"), compensate: svc.url("/a-undo"), payload: { amount: 5 } })
        .step({ action: svc.url("/b"), compensate: svc.url("/b-undo"), payload: "raw text" })
        .submit({ wait: true });
      expect(tx.status).toBe(TransactionStatus.SUCCEEDED);
      expect(callsOf(tx.gid)).toEqual(["01 action /a", "02 action /b"]);
      expect((await accord.get(tx.gid)).status).toBe(TransactionStatus.SUCCEEDED);
    });

    it("fails over to the next coordinator when one is unreachable", async () => {
      const dead = `http://127.0.0.1:${await freePort()}`;
      const client = createAccordClient({ addresses: [dead, coordinator.url], retries: 2, timeoutMs: 3000 });
      const tx = await client.saga().step({ action: svc.url("/fo"), compensate: svc.url("/fo-undo") }).submit({ wait: true });
      expect(tx.status).toBe(TransactionStatus.SUCCEEDED);
      expect(callsOf(tx.gid)).toEqual(["01 action /fo"]);
    });

    it("gives up with UNAVAILABLE after its retries when no coordinator answers", async () => {
      const client = createAccordClient({ address: `http://127.0.0.1:${await freePort()}`, retries: 1 });
      await expect(client.newGid()).rejects.toSatisfy((e) => e instanceof ConnectError && e.code === Code.Unavailable);
    });

    it("stops at once when the caller's AbortSignal fires", async () => {
      const controller = new AbortController();
      controller.abort();
      await expect(accord.saga().step({ action: svc.url("/x"), compensate: svc.url("/y") }).submit({ signal: controller.signal })).rejects.toThrow();
    });

    it("runs a TCC: try through the SDK, confirm on success", async () => {
      const tx = await accord.tcc(
        async (t) => {
          await t.branch({ try: svc.url("/try"), confirm: svc.url("/confirm"), cancel: svc.url("/cancel"), payload: { amount: 1 } });
          await t.branch({ try: svc.url("/try"), confirm: svc.url("/confirm"), cancel: svc.url("/cancel"), payload: { amount: 1 } });
        },
        { wait: true },
      );
      expect(tx.status).toBe(TransactionStatus.SUCCEEDED);
      expect(callsOf(tx.gid).sort()).toEqual(["01 confirm /confirm", "01 try /try", "02 confirm /confirm", "02 try /try"]);
    });

    it("cancels every registered TCC branch when a try is refused, and rethrows", async () => {
      const gid = await accord.newGid();
      failTry.add(`${gid}/02`);
      const error = await accord
        .tcc(
          async (t) => {
            await t.branch({ try: svc.url("/try"), confirm: svc.url("/confirm"), cancel: svc.url("/cancel") });
            await t.branch({ try: svc.url("/try"), confirm: svc.url("/confirm"), cancel: svc.url("/cancel") });
          },
          { gid, wait: true },
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TryFailedError);
      expect((error as TryFailedError).status).toBe(409);
      const tx = await accord.get(gid);
      expect(tx.status).toBe(TransactionStatus.FAILED);
      expect(tx.failureReason).toMatch(/insufficient funds/);
      expect(callsOf(gid).filter((c) => c.includes("cancel")).sort()).toEqual(["01 cancel /cancel", "02 cancel /cancel"]);
    });

    it("sends an MSG after the local transaction, and aborts it when the local work throws", async () => {
      const ok = await accord.msg({ queryPrepared: svc.url("/query") }).step({ action: svc.url("/m1") }).step({ action: svc.url("/m2") }).run(async () => {}, { wait: true });
      expect(ok.status).toBe(TransactionStatus.SUCCEEDED);
      expect(callsOf(ok.gid)).toEqual(["01 action /m1", "02 action /m2"]);

      const gid = await accord.newGid();
      await expect(
        accord.msg({ gid, queryPrepared: svc.url("/query") }).step({ action: svc.url("/m1") }).run(async () => {
          throw new Error("local insert failed");
        }),
      ).rejects.toThrow("local insert failed");
      expect((await accord.get(gid)).status).toBe(TransactionStatus.FAILED);
      expect(callsOf(gid)).toEqual([]);
    });

    it("streams a transaction's states with watch()", async () => {
      const tx = await accord.saga().step({ action: svc.url("/w"), compensate: svc.url("/w-undo") }).submit();
      const statuses: TransactionStatus[] = [];
      for await (const state of accord.watch(tx.gid)) statuses.push(state.status);
      expect(statuses.at(-1)).toBe(TransactionStatus.SUCCEEDED);
    });
  });
}

describe("XA through the SDK's mysql2 helper", () => {
  let coordinator: RunningCoordinator;
  let pool: mysql.Pool;
  let svc: Awaited<ReturnType<typeof startService>>;
  const backend = backends()[0]!;

  beforeAll(async () => {
    const database = `xa_${randomBytes(4).toString("hex")}`;
    const admin = await mysql.createConnection({ host: "127.0.0.1", port: inject("mariadbPort"), user: "root" });
    await admin.query(`CREATE DATABASE ${database}`);
    await admin.end();
    pool = mysql.createPool({ host: "127.0.0.1", port: inject("mariadbPort"), user: "root", database });
    await pool.query("CREATE TABLE transfers (gid VARCHAR(128), branch VARCHAR(64), amount INT)");
    const xa = createMysqlXa(pool);
    svc = await startService({
      "/prepare": async (info, body) => {
        const { amount } = JSON.parse(body.toString()) as { amount: number };
        await xa.prepare(info, async (conn) => {
          await conn.query("INSERT INTO transfers VALUES (?, ?, ?)", [info.gid, info.branchId, amount]);
          if (amount < 0) throw new BranchFailure("negative amount");
        });
      },
      "/commit": (info) => xa.commit(info),
      "/rollback": (info) => xa.rollback(info),
    });
    coordinator = await startTestCoordinator(await backend.freshUrl());
  });
  afterAll(async () => {
    await coordinator.stop();
    await svc.close();
    await pool.end();
    await backend.cleanup();
  });

  const rows = async (gid: string) => ((await pool.query("SELECT branch, amount FROM transfers WHERE gid = ? ORDER BY branch", [gid]))[0] as unknown[]);

  it("commits every prepared branch on success and rolls them all back on failure", async () => {
    const accord = createAccordClient({ address: coordinator.url });
    const branch = (amount: number) => ({ try: svc.url("/prepare"), confirm: svc.url("/commit"), cancel: svc.url("/rollback"), payload: { amount } });
    const ok = await accord.xa(async (x) => {
      await x.branch(branch(5));
      await x.branch(branch(7));
    }, { wait: true });
    expect(ok.status).toBe(TransactionStatus.SUCCEEDED);
    expect(await rows(ok.gid)).toEqual([{ branch: "01", amount: 5 }, { branch: "02", amount: 7 }]);

    const gid = await accord.newGid();
    await expect(
      accord.xa(async (x) => {
        await x.branch(branch(5));
        await x.branch(branch(-1));
      }, { gid, wait: true }),
    ).rejects.toBeInstanceOf(TryFailedError);
    expect((await accord.get(gid)).status).toBe(TransactionStatus.FAILED);
    expect(await rows(gid)).toEqual([]);
    const [pending] = await pool.query("XA RECOVER");
    expect(pending).toEqual([]);
  });
});
