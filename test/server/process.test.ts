import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { spawnCoordinator } from "../support/coordinator-process.js";
import { freePort } from "../support/free-port.js";
import { waitUntil } from "../support/wait-until.js";

// The real entry point (`npm start` runs it) in a child process.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "accord-process-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

it("serves, then stops gracefully on SIGTERM with exit code 0", { timeout: 120_000 }, async () => {
  const port = await freePort();
  const main = spawnCoordinator(["--port", String(port)], { ACCORD_STORE: `file:${join(dir, "a.db")}` });
  const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }));
  const { gid } = await waitUntil(() => client.newGid({}), "the coordinator to serve", 60_000); // a busy machine starts tsx slowly
  expect(gid).toMatch(/^[0-9A-Z]{26}$/);
  main.child.kill("SIGTERM");
  expect(await main.exited).toBe(0);
  expect(main.output().stdout).toContain('"msg":"stopped"');
  await expect(client.newGid({})).rejects.toThrow();
});

it("refuses to start on a bad config value with one line naming the key", { timeout: 120_000 }, async () => {
  const main = spawnCoordinator([], { ACCORD_PORT: "70000" });
  expect(await main.exited).toBe(2);
  const lines = main.output().stderr.trim().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/config key "port" \(ACCORD_PORT\): expected an integer from 0 to 65535, got "70000"/);
});
