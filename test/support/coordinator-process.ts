import { spawn, type ChildProcess } from "node:child_process";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { freePort } from "./free-port.js";
import { GiveUp, waitUntil } from "./wait-until.js";

/** The real entry point (what `npm start` runs) as a child process. */
export interface CoordinatorProcess {
  child: ChildProcess;
  exited: Promise<number | null>;
  output(): { stdout: string; stderr: string };
}

export interface SpawnOptions {
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Run the build (dist/, `npm run build`) instead of the sources through tsx, as production does. */
  compiled?: boolean;
}

export function spawnCoordinator(args: string[], env: Record<string, string> = {}, options: SpawnOptions = {}): CoordinatorProcess {
  const entry = options.compiled ? ["dist/server/main.js"] : ["--import", "tsx", "server/main.ts"];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => (stdout = (stdout + d.toString()).slice(-200_000)));
  child.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-200_000)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => ({ stdout, stderr }) };
}

/** Spawns a coordinator on a free port with fast engine settings and waits until it serves. */
export async function startCoordinatorProcess(store: string, extraArgs: string[] = [], options: SpawnOptions = {}) {
  const port = await freePort();
  const proc = spawnCoordinator([
    "--port", String(port),
    "--store", store,
    "--log-level", "warn",
    "--engine-lease-ms", "1000",
    "--engine-poll-interval-ms", "50",
    "--engine-min-retry-interval-ms", "10",
    "--engine-min-ongoing-interval-ms", "10",
    "--engine-retry-initial-ms", "50",
    "--engine-retry-max-ms", "500",
    ...extraArgs,
  ], {}, options);
  const url = `http://127.0.0.1:${port}`;
  const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: url }));
  await waitUntil(async () => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      const { stdout, stderr } = proc.output();
      throw new GiveUp(`coordinator exited (${proc.child.exitCode ?? proc.child.signalCode}) before serving: ${(stderr || stdout).slice(-2000)}`);
    }
    return client.newGid({});
  }, "the coordinator process to serve", 60_000); // generous: a busy machine starts tsx slowly
  return { ...proc, url, client };
}
