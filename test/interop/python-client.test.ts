import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";

// A client in another language, generated from the same protos: Python stubs made by Debian's
// python3-grpc-tools at test time, calling the coordinator over gRPC.
const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const backend = sqliteBackend();
const svc = new TestBranchService();
let coordinator: RunningCoordinator;
let dir: string;

beforeAll(async () => {
  await svc.listenHttp();
  coordinator = await startTestCoordinator(await backend.freshUrl());
  dir = await mkdtemp(join(tmpdir(), "accord-python-"));
  await run(PYTHON, ["-m", "grpc_tools.protoc", "-Iproto", "-Iproto/third_party", "-I/usr/include", `--python_out=${dir}`, `--grpc_python_out=${dir}`,
    "proto/accord/v1/transaction.proto", "proto/accord/v1/coordinator.proto"]);
});
afterAll(async () => {
  await coordinator.stop();
  await svc.close();
  await backend.cleanup();
  await rm(dir, { recursive: true, force: true });
});

it("runs a SAGA from a Python client generated from proto/accord/v1", async () => {
  const script = `
import json, sys, grpc
from accord.v1 import coordinator_pb2 as c, coordinator_pb2_grpc as g, transaction_pb2 as t
stub = g.CoordinatorServiceStub(grpc.insecure_channel(sys.argv[1]))
gid = stub.NewGid(c.NewGidRequest()).gid
step = t.Step(action=sys.argv[2], compensate=sys.argv[3], payload=b'{"amount": 5}')
reply = stub.Submit(c.SubmitRequest(gid=gid, mode=t.MODE_SAGA, steps=[step], wait=True), timeout=10)
try:
    stub.GetTransaction(c.GetTransactionRequest(gid="bad gid"))
except grpc.RpcError as e:
    error = [e.code().name, e.details()]
print(json.dumps({"gid": gid, "status": t.TransactionStatus.Name(reply.transaction.status), "error": error}))
`;
  await writeFile(join(dir, "client.py"), script);
  const { stdout } = await run(PYTHON, [join(dir, "client.py"), `127.0.0.1:${coordinator.port}`, svc.httpUrl("/py"), svc.httpUrl("/py-undo")], { cwd: dir });
  const result = JSON.parse(stdout) as { gid: string; status: string; error: string[] };
  expect(result.status).toBe("TRANSACTION_STATUS_SUCCEEDED");
  expect(result.error).toEqual(["INVALID_ARGUMENT", "gid: must contain only A-Z a-z 0-9 . _ : -"]);
  expect(svc.callsTo("/py", result.gid)[0]?.payload).toBe('{"amount": 5}');
});
