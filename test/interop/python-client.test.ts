import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TestBranchService } from "../support/branch-service.js";
import { requireTool, run, startMtlsWorld, type MtlsWorld } from "./mtls-coordinator.js";

// A Python application on Debian's packages, with stubs generated from proto/accord/v1 by the
// README's command: it finds the coordinator in etcd's standard naming keys, calls it over mutual
// TLS, and runs SAGAs through a gRPC branch service of its own (test/interop/python/saga.py).
const PYTHON = "/usr/bin/python3";
const PROGRAM = resolve("test/interop/python/saga.py");
const http = new TestBranchService();
let world: MtlsWorld;
let stubs: string;

interface Call {
  method: string;
  gid: string;
  branchId: string;
  op: string;
  mode: string;
  fence: string;
  data: string;
}
interface Report {
  discovered: { key: string; Addr: string; Metadata: Record<string, unknown> }[];
  dialed: string;
  results: Record<"ok" | "refused", { gid: string; watched: string[]; failedBranchId: string; branches: string[] }>;
  badGid: string[];
  calls: Call[];
}

beforeAll(async () => {
  await requireTool("Python's gRPC, its protoc and etcd3", "python3-grpcio python3-grpc-tools python3-etcd3", PYTHON, [
    "-c",
    "import grpc, grpc_tools.protoc, etcd3",
  ]);
  [world] = await Promise.all([startMtlsWorld(), http.listenHttp()]);
  stubs = await mkdtemp(join(tmpdir(), "accord-python-"));
  // The README's command ("Other languages"), into a temp dir.
  await run(PYTHON, ["-m", "grpc_tools.protoc", "-Iproto", `--python_out=${stubs}`, `--grpc_python_out=${stubs}`,
    "proto/accord/v1/transaction.proto", "proto/accord/v1/coordinator.proto", "proto/accord/v1/branch.proto", "proto/accord/v1/admin.proto"], { timeout: 60_000 });
}, 120_000);
afterAll(async () => {
  await world?.stop();
  await http.close();
  if (stubs) await rm(stubs, { recursive: true, force: true });
});

it("finds the coordinator in etcd, runs SAGAs through a Python gRPC branch over mTLS, and watches them to the end", { timeout: 180_000 }, async () => {
  const { coordinator, etcd, ca, python, service } = world;
  const { stdout } = await run(PYTHON, [PROGRAM,
    "--etcd", etcd.endpoint,
    "--ca", ca.certFile, "--cert", python.certFile, "--key", python.keyFile,
    "--server-cert", service.certFile, "--server-key", service.keyFile,
    "--http-action", http.httpUrl("/credit"), "--http-compensate", http.httpUrl("/credit-undo"),
    "--timeout", "60",
  ], { env: { ...process.env, PYTHONPATH: stubs }, timeout: 150_000 });
  const report = JSON.parse(stdout) as Report;

  const addr = `127.0.0.1:${coordinator.port}`;
  expect(report.discovered).toEqual([
    { key: `accord/v1/grpc/${addr}`, Addr: addr, Metadata: expect.objectContaining({ tls: true, version: "0.1.0", labels: {} }) },
  ]);
  expect(report.dialed).toBe(addr);

  const { ok, refused } = report.results;
  expect(ok.watched.at(-1)).toBe("TRANSACTION_STATUS_SUCCEEDED");
  expect(ok.branches).toEqual(expect.arrayContaining(["01/BRANCH_OP_ACTION/BRANCH_STATUS_SUCCEEDED", "02/BRANCH_OP_ACTION/BRANCH_STATUS_SUCCEEDED"]));
  // The coordinator called the Python service with the step's bytes as the request message.
  const callsOf = (gid: string) => report.calls.filter((c) => c.gid === gid);
  expect(callsOf(ok.gid)).toEqual([expect.objectContaining({ method: "Action", branchId: "01", op: "action", mode: "saga", data: "debit" })]);
  expect(Number(callsOf(ok.gid)[0]?.fence)).toBeGreaterThanOrEqual(1);
  expect(http.callsTo("/credit", ok.gid).map((c) => c.payload)).toEqual(['{"amount": 5}']);

  expect(refused.watched).toEqual(expect.arrayContaining(["TRANSACTION_STATUS_ABORTING", "TRANSACTION_STATUS_FAILED"]));
  expect(refused.watched.at(-1)).toBe("TRANSACTION_STATUS_FAILED");
  expect(refused.failedBranchId).toBe("02");
  const refusedCalls = callsOf(refused.gid).map((c) => `${c.method} ${c.branchId} ${c.data}`);
  expect(refusedCalls.slice(0, 2)).toEqual(["Action 01 debit", "Action 02 refuse"]);
  // Every action that ran is compensated, in reverse order (the refused one too: it may have done something).
  expect(refusedCalls).toEqual(expect.arrayContaining(["Compensate 02 refuse", "Compensate 01 debit"]));
  expect(refusedCalls.indexOf("Compensate 02 refuse")).toBeLessThan(refusedCalls.indexOf("Compensate 01 debit"));
  expect(refused.branches).toContain("01/BRANCH_OP_COMPENSATE/BRANCH_STATUS_SUCCEEDED");

  expect(report.badGid).toEqual(["INVALID_ARGUMENT", "gid: must contain only A-Z a-z 0-9 . _ : -"]);
});
