import type { ChildProcess } from "node:child_process";

/** Stops a throwaway server the way an operator would (SIGTERM) and waits for it to exit. */
export async function terminate(proc: ChildProcess | undefined): Promise<void> {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  proc.kill("SIGTERM");
  await exited;
}
