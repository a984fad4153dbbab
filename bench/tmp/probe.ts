import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, createConnectTransport } from "@connectrpc/connect-node";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { runLoad } from "../../bench/load.js";
import { startCoordinatorProcess } from "../../test/support/coordinator-process.js";
const c = await startCoordinatorProcess("file:/tmp/probe.db");
for (const [name, t] of [["grpc", createGrpcTransport({ baseUrl: c.url })], ["connect-h1", createConnectTransport({ baseUrl: c.url, httpVersion: "1.1" })], ["connect-h2", createConnectTransport({ baseUrl: c.url, httpVersion: "2" })]] as const) {
  const client = createClient(CoordinatorService, t);
  const r = await runLoad(64, 3000, async () => { await client.newGid({}); }, { warmupMs: 500 });
  console.log(name, r);
}
c.child.kill("SIGTERM"); await c.exited;
