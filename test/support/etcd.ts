import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
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

/** PEM files for an etcd that serves TLS and requires client certificates. */
export interface EtcdTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  /** A client certificate the health probe presents. */
  client: { cert: Buffer; key: Buffer; ca: Buffer };
}

export async function startEtcd(tls?: EtcdTls): Promise<ThrowawayEtcd> {
  const dir = await mkdtemp(join(tmpdir(), "accord-etcd-"));
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const endpoint = `${tls ? "https" : "http"}://127.0.0.1:${clientPort}`;
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
        ...(tls ? ["--cert-file", tls.certFile, "--key-file", tls.keyFile, "--trusted-ca-file", tls.caFile, "--client-cert-auth"] : []),
      ],
      async () => (await health(`${endpoint}/health`, tls?.client)) === "true",
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

/** etcd's /health answer, over TLS with a client certificate when given. */
function health(url: string, client?: EtcdTls["client"]): Promise<string> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    get(url, client ?? {}, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve(((JSON.parse(body) as { health?: string }).health ?? "")));
    }).on("error", reject);
  });
}
