import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";

// Keeps the README's SAGA example true: it runs against a real coordinator and must pass.
const exec = promisify(execFile);
const backend = sqliteBackend();
let coordinator: RunningCoordinator;
beforeAll(async () => {
  coordinator = await startTestCoordinator(await backend.freshUrl());
});
afterAll(async () => {
  await coordinator.stop();
  await backend.cleanup();
});

// Runs npm and tsx in a child process: a few seconds here, far more on a busy machine.
it("npm run example:saga moves money once and refuses an overdraft without moving any", { timeout: 120_000 }, async () => {
  const { stdout } = await exec("npm", ["run", "--silent", "example:saga"], { env: { ...process.env, ACCORD_URL: coordinator.url } });
  expect(stdout).toContain("transfer 30 alice -> bob: SUCCEEDED; alice=70 bob=30");
  expect(stdout).toMatch(/transfer 500 alice -> bob: FAILED \(branch 01 action refused: HTTP 409: bank-a: insufficient funds in alice\); alice=70 bob=30/);
});
