import { Etcd3, type Watcher } from "etcd3";
import type { AccordTlsOptions } from "./client-options.js";
import type { CoordinatorEndpoint } from "./routing.js";

export interface EtcdDiscoveryOptions {
  /** etcd endpoints, e.g. ["http://127.0.0.1:2379"]. */
  endpoints: string[];
  /** Where coordinators register (default "accord/v1/coordinators/"). */
  prefix?: string;
  /** TLS for etcd: CA, and client certificate and key for etcd's client-cert auth. */
  tls?: AccordTlsOptions;
}

/** The live coordinators registered in etcd, kept current by a watch on the prefix. */
export interface CoordinatorDiscovery {
  /** Resolves once the first listing arrived. */
  ready: Promise<void>;
  /** The live coordinators with their labels, sorted by address. */
  coordinators(): CoordinatorEndpoint[];
  close(): Promise<void>;
}

const labelsOf = (value: unknown): Record<string, string> =>
  typeof value === "object" && value !== null ? Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === "string")) : {};

const toBuffer = (pem: string | Buffer | undefined) => (pem === undefined ? undefined : Buffer.from(pem));

export function discoverCoordinators(options: EtcdDiscoveryOptions): CoordinatorDiscovery {
  const prefix = options.prefix ?? "accord/v1/coordinators/";
  const ca = toBuffer(options.tls?.ca);
  const client = new Etcd3({
    hosts: options.endpoints,
    credentials: ca ? { rootCertificate: ca, privateKey: toBuffer(options.tls?.key), certChain: toBuffer(options.tls?.cert) } : undefined,
    dialTimeout: 2000,
  });
  const live = new Map<string, CoordinatorEndpoint>();
  const learn = (key: string, value: string) => {
    try {
      const { address, labels } = JSON.parse(value) as { address?: unknown; labels?: unknown };
      if (typeof address === "string") live.set(key, { address, labels: labelsOf(labels) });
    } catch {
      live.delete(key); // not a coordinator record: ignore it, as if it were not there
    }
  };
  let watcher: Watcher | undefined;
  const ready = (async () => {
    // Watch first, then list, so nothing registered in between is missed.
    watcher = await client.watch().prefix(prefix).create();
    watcher.on("put", (kv) => learn(kv.key.toString(), kv.value.toString()));
    watcher.on("delete", (kv) => live.delete(kv.key.toString()));
    const all = await client.getAll().prefix(prefix).strings();
    for (const [key, value] of Object.entries(all)) learn(key, value);
  })();
  // Callers see a failed first listing through `ready`; this only avoids an unhandled rejection.
  ready.catch(() => undefined);
  return {
    ready,
    coordinators: () => [...new Map([...live.values()].map((e) => [e.address, e])).values()].sort((a, b) => a.address.localeCompare(b.address)),
    async close() {
      await watcher?.cancel().catch(() => undefined);
      client.close();
    },
  };
}
