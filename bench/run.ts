// `npm run bench [-- --scenarios ceiling,saga-mariadb,saga-sqlite,invoker,memory --clients 10,64,256 --seconds 8]`
// Starts its own MariaDB, branch services and coordinators; prints a table and writes JSON.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { create } from "@bufbuild/protobuf";
import mysql from "mysql2/promise";
import { Mode, StepSchema } from "../gen/accord/v1/transaction_pb.js";
import { startCoordinatorProcess } from "../test/support/coordinator-process.js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { CoordinatorService } from "../gen/accord/v1/coordinator_pb.js";
import { createAccordClient } from "../client/index.js";
import { startMariadb } from "../test/support/mariadb.js";
import { measureCeiling } from "./ceiling.js";
import { measureInvokerOverhead } from "./invoker-overhead.js";
import { runLoad, type LoadResult } from "./load.js";
import { delta, readCounters } from "./mariadb-counters.js";

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ""), process.argv[i + 1] ?? "");
const scenarios = (args.get("scenarios") ?? "ceiling,saga-mariadb,saga-sqlite,tcc-mariadb,msg-mariadb,invoker,memory").split(",");
const clientCounts = (args.get("clients") ?? "10,64,256").split(",").map(Number);
const seconds = Number(args.get("seconds") ?? 8);
const inFlightTarget = Number(args.get("in-flight") ?? 10_000);
const durationMs = seconds * 1000;
/** `--profile DIR`: the coordinators write V8 CPU profiles there (open in Chrome DevTools). */
const profileDir = args.get("profile");
/** The coordinators run the build, as in production (`npm run build` first). */
const coordinatorProcess = { compiled: true, nodeArgs: profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [] };
execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });

const rows: Record<string, unknown>[] = [];
const report = (row: Record<string, unknown>) => {
  rows.push(row);
  console.log(JSON.stringify(row));
};

const mariadb = await startMariadb();
const admin = await mysql.createConnection({ uri: mariadb.url("") });
const branch = await startBranchServer();
const work = mkdtempSync(join(tmpdir(), "accord-bench-"));
let dbCounter = 0;
const freshMysql = () => mariadb.url(`bench_${dbCounter++}`);
const freshSqlite = () => `file:${join(work, `bench-${dbCounter++}.db`)}`;

const machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  mariadb: String(((await admin.query("SELECT VERSION() AS v"))[0] as { v: string }[])[0]?.v),
};
console.log(JSON.stringify({ machine }));

const sagaSteps = [
  create(StepSchema, { action: `${branch.url}/ok-a`, compensate: `${branch.url}/ok-a-undo`, payload: new TextEncoder().encode('{"amount":1}') }),
  create(StepSchema, { action: `${branch.url}/ok-b`, compensate: `${branch.url}/ok-b-undo`, payload: new TextEncoder().encode('{"amount":1}') }),
];

async function sagaScenario(name: string, storeUrl: () => string, clients: number, ceiling?: LoadResult) {
  const coordinator = await startCoordinatorProcess(storeUrl(), ["--engine-lease-ms", "10000", "--engine-poll-interval-ms", "500"], coordinatorProcess);
  try {
    // Connect over HTTP/2: of connect-node's clients, the one that costs the load generator least.
    const client = createClient(CoordinatorService, createConnectTransport({ baseUrl: coordinator.url, httpVersion: "2" }));
    const before = await readCounters(admin);
    let seq = 0;
    const result = await runLoad(
      clients,
      durationMs,
      async () => {
        const { transaction } = await client.submit({ gid: `b${process.pid}-${seq++}`, mode: Mode.SAGA, steps: sagaSteps, wait: true }, { timeoutMs: 30_000 });
        if (transaction?.status !== 4) throw new Error(`saga ended ${transaction?.status}`);
      },
      { warmupMs: 2000 },
    );
    const counters = delta(before, await readCounters(admin));
    // Counters include the warm-up; divide by every saga started then too.
    const total = seq;
    report({
      scenario: name,
      ...result,
      ratioToCeiling: ceiling ? round(result.perSecond / ceiling.perSecond) : undefined,
      ...(name === "saga-mariadb"
        ? {
            handlerCommitsPerSaga: round(counters.Handler_commit! / total),
            comCommitsPerSaga: round(counters.Com_commit! / total),
            fsyncsPerSaga: round(counters.Innodb_data_fsyncs! / total),
            statementsPerSaga: round((counters.Com_insert! + counters.Com_update! + counters.Com_select!) / total),
          }
        : {}),
      coordinatorRssMB: rssMB(coordinator.child.pid!),
    });
  } finally {
    coordinator.child.kill("SIGTERM");
    await coordinator.exited;
  }
}

/** TCC and MSG through the SDK: Begin, register/try (TCC), Submit with wait; 2 branches each. */
async function twoPhaseScenario(name: "tcc-mariadb" | "msg-mariadb", clients: number, ceiling?: LoadResult) {
  const coordinator = await startCoordinatorProcess(freshMysql(), ["--engine-lease-ms", "10000", "--engine-poll-interval-ms", "500"], coordinatorProcess);
  const accord = createAccordClient({ address: coordinator.url, protocol: "connect", timeoutMs: 30_000 });
  try {
    const ok = (path: string) => `${branch.url}/ok-${path}`;
    const op =
      name === "tcc-mariadb"
        ? () =>
            accord.tcc(async (t) => {
              await t.branch({ try: ok("try"), confirm: ok("confirm"), cancel: ok("cancel"), payload: { amount: 1 } });
              await t.branch({ try: ok("try"), confirm: ok("confirm"), cancel: ok("cancel"), payload: { amount: 1 } });
            }, { wait: true })
        : () => accord.msg({ queryPrepared: ok("query") }).step({ action: ok("a") }).step({ action: ok("b") }).run(async () => {}, { wait: true });
    const before = await readCounters(admin);
    let started = 0;
    const result = await runLoad(clients, durationMs, async () => {
      started++;
      const tx = await op();
      if (tx.status !== 4) throw new Error(`${name} ended ${tx.status}`);
    }, { warmupMs: 2000 });
    const counters = delta(before, await readCounters(admin));
    report({
      scenario: name,
      ...result,
      ratioToCeiling: ceiling ? round(result.perSecond / ceiling.perSecond) : undefined,
      comCommitsPerTransaction: round(counters.Com_commit! / started),
      fsyncsPerTransaction: round(counters.Innodb_data_fsyncs! / started),
      coordinatorRssMB: rssMB(coordinator.child.pid!),
    });
  } finally {
    coordinator.child.kill("SIGTERM");
    await coordinator.exited;
  }
}

async function memoryScenario() {
  const coordinator = await startCoordinatorProcess(
    freshMysql(),
    ["--engine-lease-ms", "10000", "--engine-poll-interval-ms", "500", "--engine-max-running-transactions", String(inFlightTarget)],
    coordinatorProcess,
  );
  try {
    const steps = [create(StepSchema, { action: `${branch.url}/ongoing-a`, compensate: `${branch.url}/ok-undo` })];
    let seq = 0;
    const baseline = rssMB(coordinator.child.pid!);
    await runLoad(64, 600_000, async () => {
      await coordinator.client.submit({ gid: `m${seq++}`, mode: Mode.SAGA, steps, options: { retry: { ongoingInterval: { seconds: 600n } } } });
    }, { maxOps: inFlightTarget });
    await new Promise((r) => setTimeout(r, 3000));
    const listed = await coordinator.client.listTransactions({ statuses: [2], pageSize: 1 });
    report({ scenario: "memory", inFlight: seq, stillSubmitted: listed.transactions.length > 0, idleRssMB: baseline, rssMB: rssMB(coordinator.child.pid!) });
  } finally {
    coordinator.child.kill("SIGTERM");
    await coordinator.exited;
  }
}

try {
  const ceilings = new Map<number, LoadResult>();
  if (scenarios.some((s) => s === "ceiling" || s.endsWith("-mariadb"))) {
    for (const clients of clientCounts) {
      const db = freshMysql();
      await admin.query(`CREATE DATABASE IF NOT EXISTS \`${new URL(db).pathname.slice(1)}\``);
      const ceiling = await measureCeiling(db, clients, durationMs);
      ceilings.set(clients, ceiling);
      report({ scenario: "ceiling", ...ceiling });
    }
  }
  if (scenarios.includes("saga-mariadb")) for (const c of clientCounts) await sagaScenario("saga-mariadb", freshMysql, c, ceilings.get(c));
  if (scenarios.includes("saga-sqlite")) for (const c of clientCounts) await sagaScenario("saga-sqlite", freshSqlite, c);
  // One client count for the two-phase modes: they make 4-5 calls per transaction from the SDK.
  const twoPhaseClients = clientCounts.includes(64) ? 64 : clientCounts[0]!;
  if (scenarios.includes("tcc-mariadb")) await twoPhaseScenario("tcc-mariadb", twoPhaseClients, ceilings.get(twoPhaseClients));
  if (scenarios.includes("msg-mariadb")) await twoPhaseScenario("msg-mariadb", twoPhaseClients, ceilings.get(twoPhaseClients));
  if (scenarios.includes("invoker")) report({ scenario: "invoker", ...(await measureInvokerOverhead(branch.url, 64, durationMs)) });
  if (scenarios.includes("memory")) await memoryScenario();
} finally {
  await admin.end();
  branch.stop();
  await mariadb.stop();
  rmSync(work, { recursive: true, force: true });
}

printTable();
mkdirSync("bench/results", { recursive: true });
const file = `bench/results/bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`;
writeFileSync(file, JSON.stringify({ machine, seconds, rows }, null, 2));
console.log(`\nwritten ${file}`);

function printTable() {
  const columns = [
    "scenario", "clients", "perSecond", "ratioToCeiling", "p50Ms", "p95Ms", "p99Ms",
    "comCommitsPerSaga", "fsyncsPerSaga", "handlerCommitsPerSaga", "comCommitsPerTransaction", "fsyncsPerTransaction",
    "errors", "coordinatorRssMB", "rssMB", "ratio",
  ];
  const present = columns.filter((c) => rows.some((r) => r[c] !== undefined));
  console.log(`\nmachine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}, MariaDB ${machine.mariadb}`);
  console.log(present.join("\t"));
  for (const r of rows) console.log(present.map((c) => String(r[c] ?? "")).join("\t"));
}

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

function round(n: number) {
  return Math.round(n * 1000) / 1000;
}

async function startBranchServer() {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/branch-server.ts"], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once("line", resolve));
  const { port } = JSON.parse(line) as { port: number };
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill("SIGTERM") };
}


