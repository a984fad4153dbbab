import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { freePort } from "../support/free-port.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

// Keeps the README's hand-written Submit runnable: its curl, as written, against a coordinator
// and `npm run example:bank-services` (on free ports instead of 7460, 8081 and 8082, so it can
// run beside anything), with the output the README shows.

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const readme = readFileSync(join(root, "README.md"), "utf8");

/** The README's sh block holding the hand-written Submit, as its URL, JSON body and shown output. */
function handWrittenSubmit() {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes("CoordinatorService/Submit -d '"));
  expect(blocks, "one sh block with a curl Submit").toHaveLength(1);
  const block = blocks[0]!;
  const curl = /curl (?:.*) (http:\/\/\S+\/accord\.v1\.CoordinatorService\/Submit) -d '([^']*)'/.exec(block);
  if (!curl) throw new Error("no curl Submit with a -d '…' body in the block");
  const shownStatus = /"status":"(TRANSACTION_STATUS_\w+)"/.exec(block)?.[1];
  const shownCalls = [...block.matchAll(/^# (bank [AB]: .*)$/gm)].map((m) => m[1]!);
  return { url: curl[1]!, body: curl[2]!, shownStatus, shownCalls };
}

interface Banks {
  proc: ChildProcess;
  output: () => string;
}

/** `npm run example:bank-services` on the given ports, once it says it is ready. */
async function startBanks(portA: number, portB: number): Promise<Banks> {
  const proc = spawn("npm", ["run", "--silent", "example:bank-services"], {
    cwd: root,
    env: { ...process.env, BANK_A_PORT: String(portA), BANK_B_PORT: String(portB) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group, so stopping it reaches npm's children too
  });
  let out = "";
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  await waitUntil(
    async () => {
      if (proc.exitCode !== null) throw new Error(`example:bank-services exited ${proc.exitCode}: ${out}`);
      return out.includes("ready;");
    },
    "the example banks to be ready",
    60_000,
  );
  return { proc, output: () => out };
}

/** Ctrl-C, as the README says: SIGINT to the whole process group, then wait for it to exit. */
async function stopBanks(banks: Banks | undefined): Promise<void> {
  if (!banks || banks.proc.exitCode !== null || banks.proc.signalCode !== null) return;
  const exited = new Promise((r) => banks.proc.once("exit", r));
  process.kill(-banks.proc.pid!, "SIGINT");
  await exited;
}

describe("README: the hand-written Submit against npm run example:bank-services", () => {
  const backend = sqliteBackend();
  let coordinator: RunningCoordinator;
  let portA: number;
  let portB: number;
  let banks: Banks | undefined;
  const submit = handWrittenSubmit();

  /** The README's request with the coordinator's and banks' real ports, and optionally another gid. */
  const send = async (gid?: string) => {
    let body = submit.body.replaceAll("127.0.0.1:8081", `127.0.0.1:${portA}`).replaceAll("127.0.0.1:8082", `127.0.0.1:${portB}`);
    if (gid) body = body.replace('"gid": "transfer-1"', `"gid": "${gid}"`);
    const url = submit.url.replace("http://127.0.0.1:7460", coordinator.url);
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(res.status).toBe(200);
    return ((await res.json()) as { transaction: { gid: string; status: string; branches: { branchId: string; op: string; attempts?: number }[] } }).transaction;
  };
  const get = async (gid: string) => {
    const res = await fetch(`${coordinator.url}/accord.v1.CoordinatorService/GetTransaction`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ gid }),
    });
    return ((await res.json()) as { transaction: { status: string; lastError?: string } }).transaction;
  };

  beforeAll(async () => {
    // A short Submit wait, so the Submit sent while the banks are down answers soon (SUBMITTED).
    coordinator = await startTestCoordinator(await backend.freshUrl(), { engine: { maxWaitMs: 2000 } });
    portA = await freePort();
    portB = await freePort();
  });
  afterAll(async () => {
    await stopBanks(banks);
    await coordinator?.stop();
    await backend.cleanup();
  });

  it("the README shows what to expect", () => {
    expect(submit.url).toBe("http://127.0.0.1:7460/accord.v1.CoordinatorService/Submit");
    expect(submit.body).toContain('"gid": "transfer-1"');
    expect(submit.shownStatus).toBe("TRANSACTION_STATUS_SUCCEEDED");
    expect(submit.shownCalls.length).toBeGreaterThan(0);
  });

  it("succeeds, and the banks print the calls the README shows", async () => {
    banks = await startBanks(portA, portB);
    const tx = await send();
    expect(tx.status).toBe(submit.shownStatus);
    await waitUntil(async () => submit.shownCalls.every((line) => banks!.output().includes(line)), "the bank lines the README shows");
    // Sent again: same gid, same content, the same final state; no action runs twice.
    const again = await send();
    expect(again.status).toBe("TRANSACTION_STATUS_SUCCEEDED");
    expect(again.branches.filter((b) => b.op === "BRANCH_OP_ACTION").map((b) => b.attempts)).toEqual([1, 1]);
  }, 120_000);

  it("a transfer sent while the banks are down retries until they are back, then ends", async () => {
    await stopBanks(banks);
    const tx = await send("transfer-2");
    expect(tx.status).toBe("TRANSACTION_STATUS_SUBMITTED");
    await waitUntil(async () => (await get("transfer-2")).lastError?.includes("ECONNREFUSED"), "a refused call to be recorded");
    banks = await startBanks(portA, portB);
    // Back within the README's 60 s timeoutToFail: the transfer goes through.
    await waitUntil(async () => (await get("transfer-2")).status === "TRANSACTION_STATUS_SUCCEEDED", "transfer-2 to succeed", 60_000);
    expect(banks.output()).toContain("bank A: action /saga/debit of transfer-2/01 -> 200; alice=70");
  }, 180_000);
});
