import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startMariadb, type ThrowawayMariadb } from "../support/mariadb.js";
import { waitUntil } from "../support/wait-until.js";

// Its own MariaDB, because this test stops it.
let mariadb: ThrowawayMariadb;
let coordinator: RunningCoordinator;

beforeAll(async () => {
  mariadb = await startMariadb();
  coordinator = await startTestCoordinator(mariadb.url("accord"));
}, 180_000); // starts MariaDB: generous for a busy machine
afterAll(async () => {
  await coordinator?.stop();
  await mariadb?.stop();
});

// Stops and restarts MariaDB: generous for a busy machine.
it("reports NOT_SERVING and UNAVAILABLE while the store is down, and recovers after", { timeout: 180_000 }, async () => {
  const transport = createGrpcTransport({ baseUrl: coordinator.url });
  const health = createClient(Health, transport);
  const api = createClient(CoordinatorService, transport);
  expect((await health.check({})).status).toBe(Serving.SERVING);

  await mariadb.pause();
  expect((await health.check({})).status).toBe(Serving.NOT_SERVING);
  const res = await fetch(`${coordinator.url}/healthz`);
  expect(res.status).toBe(503);
  await expect(api.getTransaction({ gid: "any" })).rejects.toMatchObject({ code: Code.Unavailable });

  await mariadb.resume();
  await waitUntil(async () => (await health.check({})).status === Serving.SERVING, "health to recover", 30_000);
  await expect(api.getTransaction({ gid: "any" })).rejects.toMatchObject({ code: Code.NotFound });
});
