import { readFileSync } from "node:fs";
import { Etcd3, type Lease } from "etcd3";
import type { Logger } from "pino";
import type { ClusterConfig } from "../config.js";

export type RegistrationState = "disabled" | "registering" | "registered" | "unavailable";

export interface Registration {
  state(): RegistrationState;
  /** Deletes the keys (revokes their lease) and closes the etcd client. */
  stop(): Promise<void>;
}

export interface RegistrationInfo {
  id: string;
  /** The URL clients dial, http(s)://host:port. */
  address: string;
  version: string;
  zone: string;
  /** cluster.labels: what clients route canary traffic by. */
  labels: Record<string, string>;
}

/** What the standard key's Metadata says about a coordinator (README, "Running a cluster"). */
export interface NamingMetadata {
  id: string;
  version: string;
  zone: string;
  labels: Record<string, string>;
  /** Whether the port speaks TLS: grpc-go's resolver gives only host:port, not the scheme. */
  tls: boolean;
}

/**
 * etcd's gRPC naming record, byte for byte what etcd's own endpoints.Manager writes (3.5
 * `client/v3/naming/endpoints`; the 3.4 `clientv3/naming` Update is the same JSON). Readers take
 * Addr and Metadata and ignore Op, but 3.4's resolver reads Op on its first listing, where 0 is Add.
 */
export interface NamingRecord {
  Op: 0;
  Addr: string;
  Metadata: NamingMetadata;
}

/**
 * The standard key NAME/<host:port> and its value. host:port comes from the advertised URL with
 * its port spelled out, because a resolver dials Addr as it is and knows no scheme default.
 */
export function namingEntry(name: string, info: RegistrationInfo): { key: string; record: NamingRecord } {
  const url = new URL(info.address);
  const tls = url.protocol === "https:";
  const addr = `${url.hostname}:${url.port || (tls ? "443" : "80")}`;
  return {
    key: `${name}/${addr}`,
    record: {
      Op: 0,
      Addr: addr,
      Metadata: {
        id: info.id,
        version: info.version,
        zone: info.zone,
        labels: info.labels,
        tls,
      },
    },
  };
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
 * Puts PREFIX<id> = {"address","version","zone"} and, unless namingPrefix is empty, the standard
 * NAME/<host:port> record (namingEntry) under one lease kept alive while this coordinator runs, so
 * revoking it on stop, or its expiry after a crash, removes both. etcd being down, at start or
 * later, only delays registration: it is retried with backoff and logged, and the coordinator
 * keeps serving, because the database decides who runs what.
 */
export function startRegistration(config: ClusterConfig, info: RegistrationInfo, logger: Logger): Registration {
  if (config.etcdEndpoints.length === 0) return { state: () => "disabled", stop: async () => {} };
  const log = logger.child({ etcd: config.etcdEndpoints.join(",") });
  const client = etcdClient(config);
  const key = `${config.prefix}${info.id}`;
  const entries = [{ key, value: JSON.stringify({ address: info.address, version: info.version, zone: info.zone, labels: info.labels }) }];
  if (config.namingPrefix) {
    try {
      const naming = namingEntry(config.namingPrefix, info);
      entries.push({ key: naming.key, value: JSON.stringify(naming.record) });
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      // Only a hand-written cluster.advertiseUrl can fail to parse. Accord's own key still
      // serves the SDK, so the coordinator keeps going, and says so at error level.
      log.error({ err: error, advertiseUrl: info.address }, "cluster.advertiseUrl is not a URL: the standard etcd naming key is not written");
    }
  }
  const keys = entries.map((e) => e.key);
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
      log.warn({ err: error, keys }, "etcd lease lost; registering again");
      schedule();
    });
    try {
      // Not one etcd transaction: if one put fails, both are retried under a new lease, and a
      // key left under the released lease expires with it.
      await Promise.all(entries.map((entry) => current.put(entry.key).value(entry.value)));
      state = "registered";
      delay = RETRY_MIN_MS;
      log.info({ keys }, "registered in etcd");
    } catch (error) {
      if (stopped) return;
      state = "unavailable";
      log.warn({ err: error, keys, retryInMs: delay }, "etcd registration failed; retrying");
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
        await lease.revoke().catch((error: unknown) => log.warn({ err: error, keys }, "could not revoke the etcd lease; the keys expire with its TTL"));
      }
      client.close();
    },
  };
}
