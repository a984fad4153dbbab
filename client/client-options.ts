import type { EtcdDiscoveryOptions } from "./discovery.js";
import type { RoutingRule } from "./routing.js";

/** TLS material for talking to coordinators (PEM contents, not paths). */
export interface AccordTlsOptions {
  /** CA certificate(s) that signed the coordinators' certificates. */
  ca?: string | Buffer;
  /** Client certificate, for coordinators that require mTLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name to verify in the server certificate, when it differs from the address host. */
  serverName?: string;
}

export interface AccordClientOptions {
  /** One coordinator, e.g. "http://127.0.0.1:7460" (https:// with tls). */
  address?: string;
  /** Several coordinators: calls go to one and fail over to the next on UNAVAILABLE. */
  addresses?: string[];
  /** Discover coordinators in etcd instead (they register themselves); kept current by a watch. */
  etcd?: EtcdDiscoveryOptions;
  /** "grpc" (default, HTTP/2) or "connect" (JSON-free Connect binary over HTTP/2). */
  protocol?: "grpc" | "connect";
  tls?: AccordTlsOptions;
  /** Deadline of each call, in milliseconds (default 10,000). Submit with wait may use its own. */
  timeoutMs?: number;
  /** Retries of UNAVAILABLE, DEADLINE_EXCEEDED and reset connections, with the same request_id (default 3). */
  retries?: number;
  /**
   * Canary routing: which new transactions go to coordinators with which labels (etcd discovery
   * only; coordinators register `cluster.labels`). Changeable later with `setRouting`.
   */
  routing?: RoutingRule[];
}
