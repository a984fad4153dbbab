import { readFileSync } from "node:fs";
import { Etcd3, type Lease } from "etcd3";
import type { Logger } from "pino";
import type { ClusterConfig } from "../config.js";

export type RegistrationState = "disabled" | "registering" | "registered" | "unavailable";

export interface Registration {
  state(): RegistrationState;
  /** Deletes the key (revokes the lease) and closes the etcd client. */
  stop(): Promise<void>;
}

export interface RegistrationInfo {
  id: string;
  address: string;
  version: string;
  zone: string;
}

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

function etcdClient(config: ClusterConfig): Etcd3 {
  const read = (path: string) => (path ? readFileSync(path) : undefined);
  const ca = read(config.etcdCaFile);
  return new Etcd3({
    hosts: config.etcdEndpoints,
    credentials: ca ? { rootCertificate: ca, privateKey: read(config.etcdKeyFile), certChain: read(config.etcdCertFile) } : undefined,
    dialTimeout: 2000,
    // Unary calls fail fast so a down etcd shows up as "unavailable" instead of hanging.
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + 3000 }),
  });
}

/**
 * Puts PREFIX<id> = {"address","version","zone"} under a lease kept alive while this coordinator
 * runs. etcd being down, at start or later, only delays registration: it is retried with backoff
 * and logged, and the coordinator keeps serving, because the database decides who runs what.
 */
export function startRegistration(config: ClusterConfig, info: RegistrationInfo, logger: Logger): Registration {
  if (config.etcdEndpoints.length === 0) return { state: () => "disabled", stop: async () => {} };
  const log = logger.child({ etcd: config.etcdEndpoints.join(",") });
  const client = etcdClient(config);
  const key = `${config.prefix}${info.id}`;
  const value = JSON.stringify({ address: info.address, version: info.version, zone: info.zone });
  let state: RegistrationState = "registering";
  let lease: Lease | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let delay = RETRY_MIN_MS;

  const register = async () => {
    if (stopped) return;
    const current = client.lease(config.leaseTtlSeconds, { autoKeepAlive: true });
    lease = current;
    current.on("lost", (error: Error) => {
      if (stopped || lease !== current) return;
      state = "unavailable";
      log.warn({ err: error, key }, "etcd lease lost; registering again");
      schedule();
    });
    try {
      await current.put(key).value(value);
      state = "registered";
      delay = RETRY_MIN_MS;
      log.info({ key }, "registered in etcd");
    } catch (error) {
      if (stopped) return;
      state = "unavailable";
      log.warn({ err: error, key, retryInMs: delay }, "etcd registration failed; retrying");
      current.release();
      schedule();
    }
  };

  const schedule = () => {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => void register(), delay);
    delay = Math.min(RETRY_MAX_MS, delay * 2);
  };

  void register();
  return {
    state: () => state,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      if (lease && state === "registered") {
        await lease.revoke().catch((error: unknown) => log.warn({ err: error, key }, "could not revoke the etcd lease; the key expires with its TTL"));
      }
      client.close();
    },
  };
}
