import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestPki, type CertFiles } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { startEtcd, type ThrowawayEtcd } from "../support/etcd.js";
import { sqliteBackend } from "../support/stores.js";

export const run = promisify(execFile);

/** The client identities the coordinator lets call CoordinatorService: no one else may. */
export const PYTHON_IDENTITY = "spiffe://test/python-app";
export const GO_IDENTITY = "spiffe://test/go-app";

/**
 * A throwaway etcd and a coordinator that requires client certificates, registered in etcd under
 * the default standard naming prefix, with the certificates the programs in other languages use.
 */
export interface MtlsWorld {
  etcd: ThrowawayEtcd;
  coordinator: RunningCoordinator;
  ca: CertFiles;
  /** Client certificates of the two applications (SAN URIs PYTHON_IDENTITY and GO_IDENTITY). */
  python: CertFiles;
  go: CertFiles;
  /** For the applications' own branch services: names localhost, serves and is a client too. */
  service: CertFiles;
  stop(): Promise<void>;
}

export async function startMtlsWorld(): Promise<MtlsWorld> {
  const backend = sqliteBackend();
  const pki = await TestPki.create();
  const cleanups: (() => Promise<void>)[] = [() => backend.cleanup(), () => pki.cleanup()];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    const ca = await pki.ca("interop-ca");
    // Programs dial the Addr of the standard key, 127.0.0.1:port, so the certificate names the IP.
    const server = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    const coordinatorAsClient = await pki.leaf(ca, { cn: "accord-coordinator" });
    const python = await pki.leaf(ca, { cn: "python-app", san: [`URI:${PYTHON_IDENTITY}`] });
    const go = await pki.leaf(ca, { cn: "go-app", san: [`URI:${GO_IDENTITY}`] });
    const service = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    const etcd = await startEtcd();
    cleanups.push(() => etcd.stop());
    const coordinator = await startTestCoordinator(await backend.freshUrl(), {
      cluster: { etcdEndpoints: etcd.endpoint, leaseTtlSeconds: 10 },
      security: {
        tlsCertFile: server.certFile,
        tlsKeyFile: server.keyFile,
        tlsCaFile: ca.certFile,
        mtls: "required",
        coordinatorCallers: `${PYTHON_IDENTITY},${GO_IDENTITY}`,
        // grpcs:// branches: the applications' services require a client certificate from it.
        branchCaFile: ca.certFile,
        branchCertFile: coordinatorAsClient.certFile,
        branchKeyFile: coordinatorAsClient.keyFile,
      },
    });
    cleanups.push(() => coordinator.stop());
    return { etcd, coordinator, ca, python, go, service, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Fails with what to install when a tool is missing: these tests must never skip, and `.ci/run`
 * installs every one of them.
 */
export async function requireTool(what: string, packages: string, command: string, args: string[]): Promise<void> {
  try {
    await run(command, args, { timeout: 60_000 });
  } catch (error) {
    throw new Error(`${what} is needed for this test: apt-get install ${packages} (.ci/run installs it). ${command} ${args.join(" ")}: ${String(error)}`, {
      cause: error,
    });
  }
}
