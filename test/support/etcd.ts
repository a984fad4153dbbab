import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { terminate } from "./child-process.js";
import { freePort } from "./free-port.js";
import { waitUntil } from "./wait-until.js";

/** A throwaway single-node etcd on free loopback ports, in a temp dir removed on stop. */
export interface ThrowawayEtcd {
  endpoint: string;
  /** Stop it (SIGTERM), keeping its data, to start it again later. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export async function startEtcd(): Promise<ThrowawayEtcd> {
  const dir = await mkdtemp(join(tmpdir(), "accord-etcd-"));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  let child: ChildProcess | undefined;

  const launch = async () => {
    const proc = spawn(
      "etcd",
      [
        "--name", "n1",
        "--data-dir", join(dir, "data"),
        "--listen-client-urls", endpoint,
        "--advertise-client-urls", endpoint,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", `n1=${peer}`,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    proc.stderr?.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child = proc;
    await waitUntil(async () => {
      if (proc.exitCode !== null) throw new Error(`etcd exited ${proc.exitCode}: ${stderr}`);
      const res = await fetch(`${endpoint}/health`);
      return res.ok && ((await res.json()) as { health: string }).health === "true";
    }, "etcd to be healthy");
  };
  const halt = async () => {
    const proc = child;
    child = undefined;
    await terminate(proc);
  };

  await launch();
  return {
    endpoint,
    pause: halt,
    resume: launch,
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
