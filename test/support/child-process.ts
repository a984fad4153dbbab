import { spawn, type ChildProcess } from "node:child_process";
import { GiveUp, waitUntil } from "./wait-until.js";

/** Stops a process the way an operator would (SIGTERM) and waits for it to exit. */
export async function terminate(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await exited;
}

/**
 * Starts a throwaway server binary and waits until `ready` says it serves (failing with its
 * stderr if it exits first). Resolves with a function that stops it.
 */
export async function startServerProcess(command: string, args: string[], ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<() => Promise<void>> {
  const proc = spawn(command, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  await waitUntil(
    async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new GiveUp(`${command} exited ${proc.exitCode ?? proc.signalCode}: ${stderr}`);
      return ready();
    },
    `${command} to serve`,
    timeoutMs,
  );
  return () => terminate(proc);
}
