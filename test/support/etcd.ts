import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess } from "./child-process.js";
import { freePort } from "./free-port.js";

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
  let halt = async () => {};

  const launch = async () => {
    halt = await startServerProcess(
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
      async () => {
        const res = await fetch(`${endpoint}/health`);
        return res.ok && ((await res.json()) as { health: string }).health === "true";
      },
    );
  };

  await launch();
  return {
    endpoint,
    pause: () => halt(),
    resume: launch,
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
