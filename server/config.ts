import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { InvalidAllowlistError, parseAllowEntry } from "./security/target-policy.js";

/**
 * One typed, validated configuration. Precedence: flags > environment > file > defaults.
 * A nested key `section.someKey` is `ACCORD_SECTION_SOME_KEY` in the environment and
 * `--section-some-key` on the command line; the file (`--config`, YAML or JSON) nests it.
 */
export interface AccordConfig {
  /** Interface to listen on. */
  host: string;
  /** The one port for gRPC, gRPC-Web, Connect, reflection, health and /healthz. */
  port: number;
  /** `file:PATH` (embedded SQLite) or `mysql://user:pass@host:port/db`. */
  store: string;
  log: { level: LogLevel };
  mysql: {
    poolSize: number;
    /** Seconds a statement waits for a row lock held by another session (innodb_lock_wait_timeout). */
    lockWaitTimeoutSeconds: number;
  };
  limits: {
    /** Largest request message accepted (bytes); larger ones get RESOURCE_EXHAUSTED. */
    maxMessageBytes: number;
    /** Largest branch payload (bytes). */
    maxPayloadBytes: number;
    /** Most branches in one transaction. */
    maxBranches: number;
    /**
     * A connection that sends nothing for this long is closed (and an HTTP/1.1 one silent this
     * long, e.g. a slowloris stuck in its headers). Keep it above engine.maxWaitMs.
     */
    idleConnectionMs: number;
    /** HTTP/2 streams one connection may have open at once (advertised in SETTINGS); more are refused. */
    maxConcurrentStreams: number;
    /**
     * An HTTP/2 stream with no frame either way for this long is reset while it waits on the
     * client (an unfinished request, an unread response); a quiet Watch is not.
     */
    idleStreamMs: number;
  };
  /** Plain-HTTP listener for probes (GET /healthz), no TLS and no RPCs; port 0 = none. */
  ops: { host: string; port: number };
  shutdown: {
    /** How long a graceful stop waits for in-flight calls before closing them. */
    graceMs: number;
  };
  engine: EngineConfig;
  cluster: ClusterConfig;
  security: SecurityConfig;
}

/** TLS, client identities and what they may call, and where branch calls may go. */
export interface SecurityConfig {
  /** PEM certificate and key of the coordinator's one port; both set = TLS (1.2 minimum). */
  tlsCertFile: string;
  tlsKeyFile: string;
  /** CA that signs client certificates (for mTLS). */
  tlsCaFile: string;
  /** Client certificates: off, optional (verified when sent) or required. */
  mtls: "off" | "optional" | "required";
  /** Identities (certificate SAN URI, then DNS, then CN) that may call CoordinatorService; "*" = anyone. */
  coordinatorCallers: string;
  /** Identities that may call AdminService; empty = nobody. */
  adminCallers: string;
  /** Gid namespaces: "identity=prefix|prefix;identity2=prefix". Listed identities only touch their gids. */
  tenantPrefixes: string;
  /**
   * Hosts branch targets may name: exact names or IPs, or "*.domain"; "*" = any (not advised).
   * Each may carry a port or range (`host:8080`, `host:8000-8099`, `[::1]:9000`). The
   * coordinator's own port, its etcd endpoints and its database are refused unless an entry
   * names that exact host and port.
   */
  allowedTargetHosts: string;
  /** Schemes branch targets may use. */
  allowedTargetSchemes: string;
  /** For https:// and grpcs:// branches: the CA to verify them, and the coordinator's client certificate. */
  branchCaFile: string;
  branchCertFile: string;
  branchKeyFile: string;
}
/** etcd registration, so clients can discover coordinators. The database decides who runs what. */
export interface ClusterConfig {
  /** Comma-separated etcd endpoints (http:// or https://); empty disables registration. */
  etcdEndpoints: string;
  /** Key prefix; each coordinator puts PREFIX<id>. */
  prefix: string;
  /** TTL of the lease the key lives under (kept alive while the coordinator runs). */
  leaseTtlSeconds: number;
  /** Free-form zone, for clients that prefer nearby coordinators. */
  zone: string;
  /** The URL clients should dial; default http://host:port as listened on. */
  advertiseUrl: string;
  /** TLS for etcd: CA, and client certificate and key for etcd's client-cert auth. */
  etcdCaFile: string;
  etcdCertFile: string;
  etcdKeyFile: string;
}

/** How the engine runs transactions; retry and timeout fields are per-transaction defaults. */
export interface EngineConfig {
  /** Identity of this coordinator in lease rows; empty means host-pid-random. */
  coordinatorId: string;
  /** Lease on a running transaction; a dead coordinator's work is taken over after this. */
  leaseMs: number;
  /** How often due work (retries, crash leftovers) is looked for. */
  pollIntervalMs: number;
  /** Most transactions claimed per poll. */
  claimBatch: number;
  /** Bulkhead: transactions run at once by this coordinator. */
  maxRunningTransactions: number;
  /** Bulkhead: concurrent calls to one branch host. */
  maxCallsPerHost: number;
  branchTimeoutMs: number;
  retryInitialMs: number;
  retryMultiplier: number;
  retryMaxMs: number;
  /** After this many attempts of one operation the transaction is marked stalled. */
  retryMaxAttempts: number;
  /** A transaction unfinished this long after it was accepted is marked stalled too. */
  stalledAfterMs: number;
  ongoingIntervalMs: number;
  preparedTimeoutMs: number;
  /** Longest Submit-with-wait when the caller set no deadline. */
  maxWaitMs: number;
  /**
   * Floors for what a transaction (or this config) may ask for, so no one can make the
   * coordinator hammer a failing service or time calls out before they can answer.
   */
  minRetryIntervalMs: number;
  minOngoingIntervalMs: number;
  minBranchTimeoutMs: number;
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_PORT = 7460;

export function defaultConfig(): AccordConfig {
  return {
    host: "127.0.0.1",
    port: DEFAULT_PORT,
    store: "file:./data/accord.db",
    log: { level: "info" },
    mysql: { poolSize: 16, lockWaitTimeoutSeconds: 5 },
    limits: { maxMessageBytes: 16 * 1024 * 1024, maxPayloadBytes: 1024 * 1024, maxBranches: 1000, idleConnectionMs: 60_000, maxConcurrentStreams: 1000, idleStreamMs: 60_000 },
    ops: { host: "127.0.0.1", port: 0 },
    shutdown: { graceMs: 10_000 },
    engine: {
      coordinatorId: "",
      leaseMs: 10_000,
      pollIntervalMs: 500,
      claimBatch: 64,
      maxRunningTransactions: 2000,
      maxCallsPerHost: 64,
      branchTimeoutMs: 10_000,
      retryInitialMs: 1000,
      retryMultiplier: 2,
      retryMaxMs: 60_000,
      retryMaxAttempts: 10,
      stalledAfterMs: 3_600_000,
      ongoingIntervalMs: 5000,
      preparedTimeoutMs: 30_000,
      maxWaitMs: 30_000,
      minRetryIntervalMs: 100,
      minOngoingIntervalMs: 100,
      minBranchTimeoutMs: 100,
    },
    cluster: {
      etcdEndpoints: "",
      prefix: "accord/v1/coordinators/",
      leaseTtlSeconds: 10,
      zone: "",
      advertiseUrl: "",
      etcdCaFile: "",
      etcdCertFile: "",
      etcdKeyFile: "",
    },
    security: {
      tlsCertFile: "",
      tlsKeyFile: "",
      tlsCaFile: "",
      mtls: "off",
      coordinatorCallers: "*",
      adminCallers: "",
      tenantPrefixes: "",
      allowedTargetHosts: "127.0.0.1,localhost,::1",
      allowedTargetSchemes: "http,https,grpc,grpcs",
      branchCaFile: "",
      branchCertFile: "",
      branchKeyFile: "",
    },
  };
}

/** A bad configuration value; its message is the one line start-up prints. */
export class ConfigError extends Error {
  constructor(key: string, expected: string, got: unknown, source: string) {
    super(`config key "${key}" (${source}): expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = "ConfigError";
  }
}

type Parser = (raw: unknown) => { ok: true; value: unknown } | { ok: false; expected: string };

const integer =
  (min: number, max: number): Parser =>
  (raw) => {
    const n = typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
    return typeof n === "number" && Number.isInteger(n) && n >= min && n <= max
      ? { ok: true, value: n }
      : { ok: false, expected: `an integer from ${min} to ${max}` };
  };

const oneOf =
  (values: readonly string[]): Parser =>
  (raw) =>
    typeof raw === "string" && values.includes(raw) ? { ok: true, value: raw } : { ok: false, expected: `one of ${values.join(", ")}` };

const decimal =
  (min: number, max: number): Parser =>
  (raw) => {
    const n = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw;
    return typeof n === "number" && Number.isFinite(n) && n >= min && n <= max
      ? { ok: true, value: n }
      : { ok: false, expected: `a number from ${min} to ${max}` };
  };

const anyString: Parser = (raw) =>
  typeof raw === "string" ? { ok: true, value: raw.trim() } : { ok: false, expected: "a string" };

const nonEmptyString: Parser = (raw) =>
  typeof raw === "string" && raw.trim() !== "" ? { ok: true, value: raw.trim() } : { ok: false, expected: "a non-empty string" };

const etcdEndpoints: Parser = (raw) => {
  const list = typeof raw === "string" ? raw.split(",").map((e) => e.trim()).filter(Boolean) : [];
  return typeof raw === "string" && list.every((e) => /^https?:\/\/[^/]+$/.test(e))
    ? { ok: true, value: list.join(",") }
    : { ok: false, expected: "comma-separated http(s)://host:port etcd endpoints" };
};

const storeUrl: Parser = (raw) => {
  if (typeof raw === "string" && /^file:.+/.test(raw)) return { ok: true, value: raw };
  if (typeof raw === "string" && raw.startsWith("mysql://")) {
    try {
      const url = new URL(raw);
      if (url.hostname && /^\/[A-Za-z0-9_]+$/.test(url.pathname)) return { ok: true, value: raw };
    } catch {
      // falls through to the error below, which names the key
    }
  }
  return { ok: false, expected: "file:PATH or mysql://user:pass@host:port/database" };
};

const targetAllowlist: Parser = (raw) => {
  const expected = "comma-separated host, host:port or host:from-to entries (\"*.domain\" and [IPv6] allowed)";
  if (typeof raw !== "string") return { ok: false, expected };
  try {
    raw.split(",").map((s) => s.trim()).filter(Boolean).forEach(parseAllowEntry);
    return { ok: true, value: raw.trim() };
  } catch (error) {
    if (error instanceof InvalidAllowlistError) return { ok: false, expected: `${expected}; ${error.message}` };
    throw error;
  }
};

/** Every leaf key and how to read it; the shape mirrors AccordConfig. */
const PARSERS: Record<string, Parser> = {
  host: nonEmptyString,
  port: integer(0, 65535),
  store: storeUrl,
  "log.level": oneOf(LOG_LEVELS),
  "mysql.poolSize": integer(1, 1000),
  "mysql.lockWaitTimeoutSeconds": integer(1, 3600),
  "limits.maxMessageBytes": integer(1024, 1024 * 1024 * 1024),
  "limits.maxPayloadBytes": integer(1, 256 * 1024 * 1024),
  "limits.maxBranches": integer(1, 100_000),
  "limits.idleConnectionMs": integer(100, 3_600_000),
  "limits.maxConcurrentStreams": integer(1, 1_000_000),
  "limits.idleStreamMs": integer(100, 3_600_000),
  "ops.host": nonEmptyString,
  "ops.port": integer(0, 65535),
  "shutdown.graceMs": integer(0, 600_000),
  "engine.coordinatorId": anyString,
  "engine.leaseMs": integer(100, 3_600_000),
  "engine.pollIntervalMs": integer(10, 60_000),
  "engine.claimBatch": integer(1, 10_000),
  "engine.maxRunningTransactions": integer(1, 1_000_000),
  "engine.maxCallsPerHost": integer(1, 100_000),
  "engine.branchTimeoutMs": integer(1, 3_600_000),
  "engine.retryInitialMs": integer(1, 3_600_000),
  "engine.retryMultiplier": decimal(1, 100),
  "engine.retryMaxMs": integer(1, 86_400_000),
  "engine.retryMaxAttempts": integer(1, 1_000_000),
  "engine.stalledAfterMs": integer(1, 30 * 86_400_000),
  "engine.ongoingIntervalMs": integer(1, 3_600_000),
  "engine.preparedTimeoutMs": integer(1, 86_400_000),
  "engine.maxWaitMs": integer(0, 3_600_000),
  "engine.minRetryIntervalMs": integer(1, 3_600_000),
  "engine.minOngoingIntervalMs": integer(1, 3_600_000),
  "engine.minBranchTimeoutMs": integer(1, 3_600_000),
  "cluster.etcdEndpoints": etcdEndpoints,
  "cluster.prefix": nonEmptyString,
  "cluster.leaseTtlSeconds": integer(2, 3600),
  "cluster.zone": anyString,
  "cluster.advertiseUrl": anyString,
  "cluster.etcdCaFile": anyString,
  "cluster.etcdCertFile": anyString,
  "cluster.etcdKeyFile": anyString,
  "security.tlsCertFile": anyString,
  "security.tlsKeyFile": anyString,
  "security.tlsCaFile": anyString,
  "security.mtls": oneOf(["off", "optional", "required"]),
  "security.coordinatorCallers": anyString,
  "security.adminCallers": anyString,
  "security.tenantPrefixes": anyString,
  "security.allowedTargetHosts": targetAllowlist,
  "security.allowedTargetSchemes": anyString,
  "security.branchCaFile": anyString,
  "security.branchCertFile": anyString,
  "security.branchKeyFile": anyString,
};

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c}`).replace(/\./g, "_").toUpperCase();
export const envName = (key: string) => `ACCORD_${snake(key)}`;
export const flagName = (key: string) => `--${snake(key).toLowerCase().replace(/_/g, "-")}`;

export interface ConfigSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

/** Reads and validates the configuration; throws ConfigError naming the first bad key. */
export function loadConfig({ argv, env }: ConfigSources): AccordConfig {
  const flags = parseFlags(argv);
  const config = defaultConfig();
  const configFile = flags.get("--config") ?? env.ACCORD_CONFIG;
  if (configFile) applyFile(config, configFile);
  for (const key of Object.keys(PARSERS)) {
    const fromEnv = env[envName(key)];
    if (fromEnv !== undefined && fromEnv !== "") set(config, key, fromEnv, envName(key));
  }
  for (const [flag, value] of flags) {
    if (flag === "--config") continue;
    const key = Object.keys(PARSERS).find((k) => flagName(k) === flag);
    if (!key) throw new ConfigError(flag, `one of --config, ${Object.keys(PARSERS).map(flagName).join(", ")}`, flag, "command line");
    set(config, key, value, flag);
  }
  checkSecurity(config.security);
  checkMinimums(config.engine);
  return config;
}

/** The coordinator's own defaults respect the floors it enforces on transactions. */
function checkMinimums(engine: EngineConfig): void {
  const floors: [keyof EngineConfig, keyof EngineConfig][] = [
    ["retryInitialMs", "minRetryIntervalMs"],
    ["retryMaxMs", "minRetryIntervalMs"],
    ["ongoingIntervalMs", "minOngoingIntervalMs"],
    ["branchTimeoutMs", "minBranchTimeoutMs"],
  ];
  for (const [key, floor] of floors) {
    if (engine[key] < engine[floor]) {
      throw new ConfigError(`engine.${key}`, `at least engine.${floor} (${engine[floor]})`, engine[key], "configuration");
    }
  }
}

/** Settings that only make sense together. */
function checkSecurity(security: SecurityConfig): void {
  if (Boolean(security.tlsCertFile) !== Boolean(security.tlsKeyFile)) {
    throw new ConfigError("security.tlsKeyFile", "both security.tlsCertFile and security.tlsKeyFile, or neither", security.tlsKeyFile, "configuration");
  }
  if (security.mtls !== "off" && !(security.tlsCertFile && security.tlsCaFile)) {
    throw new ConfigError("security.mtls", "TLS (security.tlsCertFile, tlsKeyFile) and security.tlsCaFile for client certificates", security.mtls, "configuration");
  }
}

function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith("--")) throw new ConfigError(arg, "a --flag", arg, "command line");
    const eq = arg.indexOf("=");
    if (eq > 0) {
      flags.set(arg.slice(0, eq), arg.slice(eq + 1));
    } else {
      const value = argv[i + 1];
      if (value === undefined) throw new ConfigError(arg, "a value after the flag", null, "command line");
      flags.set(arg, value);
      i++;
    }
  }
  return flags;
}

function applyFile(config: AccordConfig, path: string): void {
  let content: unknown;
  try {
    content = parseYaml(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError("--config", "a readable YAML or JSON file", `${path}: ${(error as Error).message}`, "command line");
  }
  const walk = (node: unknown, prefix: string) => {
    if (node === null || node === undefined) return;
    if (typeof node !== "object" || Array.isArray(node)) throw new ConfigError(prefix || "(root)", "a mapping", node, path);
    for (const [name, value] of Object.entries(node)) {
      const key = prefix ? `${prefix}.${name}` : name;
      if (key in PARSERS) set(config, key, value, path);
      else if (Object.keys(PARSERS).some((k) => k.startsWith(`${key}.`))) walk(value, key);
      else throw new ConfigError(key, "a known key", value, path);
    }
  };
  walk(content, "");
}

function set(config: AccordConfig, key: string, raw: unknown, source: string): void {
  const parsed = PARSERS[key]!(raw);
  if (!parsed.ok) throw new ConfigError(key, parsed.expected, raw, source);
  const path = key.split(".");
  let node = config as unknown as Record<string, unknown>;
  for (const part of path.slice(0, -1)) node = node[part] as Record<string, unknown>;
  node[path.at(-1)!] = parsed.value;
}

/** The configuration with credentials removed, for logs and AdminService.GetConfig. */
export function redactedConfig(config: AccordConfig): AccordConfig {
  const copy = structuredClone(config);
  if (copy.store.startsWith("mysql://")) {
    const url = new URL(copy.store);
    if (url.password) url.password = "REDACTED";
    copy.store = url.href;
  }
  return copy;
}
