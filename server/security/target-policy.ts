import { isIP } from "node:net";
import { networkInterfaces } from "node:os";

/**
 * Where branch calls may go. Without it, anyone who may call Submit could make the coordinator
 * POST to any address it can reach (an internal admin port, a cloud metadata service, its own
 * etcd or database) on their behalf. The default allows loopback only, and even there never the
 * coordinator's own infrastructure.
 */
export interface TargetPolicy {
  /** Why `url` may not be called, or undefined when it may. */
  refusal(url: URL): string | undefined;
  /**
   * Marks an address as the coordinator's own (a listener, an etcd endpoint, the database):
   * refused unless an allowlist entry names its exact host and port.
   */
  protect(address: ProtectedAddress): void;
  /**
   * Replaces the allowed hosts and schemes (a config reload); protected addresses stay. Throws
   * InvalidAllowlistError, changing nothing, on a malformed entry.
   */
  update(allowedHosts: ListSetting, allowedSchemes: ListSetting): void;
  /** Grows at each update(), so whoever caches refusals knows when to drop them. */
  readonly generation: number;
}

export interface ProtectedAddress {
  /** A host name or IP; a wildcard bind address (0.0.0.0, ::) stands for every local address. */
  host: string;
  port: number;
  /** What it is, for the refusal message: "the coordinator's port", "etcd", "the database". */
  what: string;
}

/** One allowlist entry: a host pattern with an optional port or port range. */
interface AllowEntry {
  host: string;
  /** Inclusive; undefined = any port. */
  ports?: { from: number; to: number };
}

/** A malformed allowlist entry; config loading reports it against the key. */
export class InvalidAllowlistError extends Error {
  override name = "InvalidAllowlistError";
}

const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443, "grpc:": 80, "grpcs:": 443 };
/**
 * A host as compared: lower case, no IPv6 brackets, and an IPv4-mapped IPv6 address
 * (`[::ffff:10.0.0.6]`, which URL writes `::ffff:a00:6`) as the IPv4 address it reaches.
 */
function canonicalHost(host: string): string {
  const bare = host.replace(/^\[|\]$/g, "").toLowerCase();
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(bare);
  if (mapped) {
    const [high, low] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
    return [high >> 8, high & 255, low >> 8, low & 255].join(".");
  }
  const dotted = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare);
  return dotted ? dotted[1]! : bare;
}

function parsePort(text: string, entry: string): number {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new InvalidAllowlistError(`"${entry}": port "${text}" is not 1-65535`);
  return port;
}

/**
 * Parses `host`, `host:port`, `host:from-to`, `*.domain[:port]`, `[v6]:port` or a bare IPv6
 * address. Throws InvalidAllowlistError naming the entry.
 */
export function parseAllowEntry(entry: string): AllowEntry {
  let host = entry;
  let portText: string | undefined;
  if (entry.startsWith("[")) {
    const close = entry.indexOf("]");
    if (close < 0) throw new InvalidAllowlistError(`"${entry}": missing "]"`);
    host = entry.slice(1, close);
    const rest = entry.slice(close + 1);
    if (rest !== "" && !rest.startsWith(":")) throw new InvalidAllowlistError(`"${entry}": expected ":port" after "]"`);
    portText = rest ? rest.slice(1) : undefined;
  } else if (entry.split(":").length === 2) {
    [host, portText] = entry.split(":") as [string, string];
  }
  host = host.toLowerCase();
  if (!host) throw new InvalidAllowlistError(`"${entry}": no host`);
  if (portText === undefined) return { host };
  const [from, to = from] = portText.split("-") as [string, string?];
  const range = { from: parsePort(from ?? "", entry), to: parsePort(to ?? "", entry) };
  if (range.from > range.to) throw new InvalidAllowlistError(`"${entry}": port range ${portText} is empty`);
  return { host, ports: range };
}

const LOOPBACK_NAMES = new Set(["localhost", "0.0.0.0", "::"]);

/** Whether `host` names this machine: loopback, a wildcard address, or an interface address. */
function isLocalHost(host: string, localAddresses: Set<string>): boolean {
  if (LOOPBACK_NAMES.has(host) || host.endsWith(".localhost") || localAddresses.has(host)) return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  // ::1, and IPv4-mapped loopback (::ffff:127.0.0.1 is written ::ffff:7f00:1 by URL).
  return host === "::1" || /^::ffff:(127\.|7f[0-9a-f]{2}:)/.test(host);
}

function localInterfaceAddresses(): Set<string> {
  return new Set(
    Object.values(networkInterfaces())
      .flat()
      .filter((i) => i !== undefined)
      .map((i) => i.address.toLowerCase()),
  );
}

/** A list from the config, or the comma-separated form env and flags use. */
export type ListSetting = string | readonly string[];
const listOf = (setting: ListSetting) => (typeof setting === "string" ? setting.split(",") : setting).map((s) => s.trim()).filter(Boolean);

export function createTargetPolicy(allowedHosts: ListSetting, allowedSchemes: ListSetting): TargetPolicy {
  let entries = listOf(allowedHosts).map(parseAllowEntry);
  let schemes = new Set(listOf(allowedSchemes).map((s) => s.toLowerCase()));
  let generation = 0;
  const protectedAddresses: ProtectedAddress[] = [];
  const localAddresses = localInterfaceAddresses();

  const hostMatches = (pattern: string, host: string) => pattern === "*" || pattern === host || (pattern.startsWith("*.") && host.endsWith(pattern.slice(1)));
  const portMatches = (entry: AllowEntry, port: number) => !entry.ports || (port >= entry.ports.from && port <= entry.ports.to);

  /** The coordinator's own address the target reaches, if any. */
  const ownAddress = (host: string, port: number) =>
    protectedAddresses.find((p) => {
      if (p.port !== port) return false;
      const own = canonicalHost(p.host);
      // A listener on a local or wildcard address is reached by every local spelling.
      return own === host || (isLocalHost(own, localAddresses) && isLocalHost(host, localAddresses));
    });

  return {
    refusal(url) {
      const scheme = url.protocol.replace(/:$/, "");
      if (!schemes.has(scheme)) return `scheme "${scheme}" is not allowed (allowed: ${[...schemes].join(", ")})`;
      const host = canonicalHost(url.hostname);
      const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] ?? 0;
      const hostEntries = entries.filter((e) => hostMatches(e.host, host));
      if (hostEntries.length === 0) return `host "${host}" is not in the branch-target allowlist (security.allowedTargetHosts)`;
      if (!hostEntries.some((e) => portMatches(e, port))) return `port ${port} of host "${host}" is not in the branch-target allowlist (security.allowedTargetHosts)`;
      const own = ownAddress(host, port);
      // Only an entry naming this exact host and this one port (not a range that covers it) opens
      // the coordinator's own infrastructure.
      if (own && !entries.some((e) => e.host === host && e.ports?.from === port && e.ports.to === port)) {
        return `"${host}:${port}" is ${own.what}; branch targets may not point at the coordinator's own infrastructure unless security.allowedTargetHosts names "${host}:${port}"`;
      }
      return undefined;
    },
    protect(address) {
      protectedAddresses.push(address);
    },
    update(hosts, schemeList) {
      const parsed = listOf(hosts).map(parseAllowEntry);
      entries = parsed;
      schemes = new Set(listOf(schemeList).map((s) => s.toLowerCase()));
      generation++;
    },
    get generation() {
      return generation;
    },
  };
}

/** The addresses of the coordinator's etcd endpoints and database, known from its config. */
export function infrastructureAddresses(config: { store: string; cluster: { etcdEndpoints: readonly string[] } }): ProtectedAddress[] {
  const addresses: ProtectedAddress[] = [];
  const add = (raw: string, defaultPort: number, what: string) => {
    const url = new URL(raw);
    addresses.push({ host: url.hostname, port: url.port ? Number(url.port) : defaultPort, what });
  };
  for (const endpoint of config.cluster.etcdEndpoints) add(endpoint, 2379, "an etcd endpoint of this coordinator");
  if (config.store.startsWith("mysql://")) add(config.store, 3306, "this coordinator's database");
  return addresses;
}
