import { z } from "zod";
import { InvalidAllowlistError, parseAllowEntry } from "../security/target-policy.js";

// The one description of Accord's configuration. The TypeScript types, the defaults, the env and
// flag names, the validation messages, `--help` and docs/accord.example.yaml are all read from
// here, so a key documented anywhere is the key the loader accepts.

/** What `--help`, the example file and validation messages say about one key. */
export interface OptionDoc {
  description: string;
  /** What a valid value is: every validation message for the key ends with it. */
  expected: string;
  /** Stands for the value after the flag in `--help`. */
  placeholder: string;
  /** The value written the way env and flags take it (lists comma-separated). */
  text: (value: unknown) => string;
  /** A non-default value worth showing, commented out, in the example file. */
  example?: unknown;
}

export const optionDocs = z.registry<OptionDoc>();
export const sectionDocs = z.registry<{ description: string }>();

/** A kind of value: its schema, and how messages and help talk about it. */
interface Kind<S extends z.ZodType> {
  schema: S;
  expected: string;
  placeholder: string;
  text?: (value: z.output<S>) => string;
}

// Env and flags only ever give strings; a file may too, so every source goes through these.
const digits = (raw: unknown) => (typeof raw === "string" && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw);
const numeric = (raw: unknown) => (typeof raw === "string" && raw.trim() !== "" ? Number(raw) : raw);
const commaList = (raw: unknown) => (typeof raw === "string" ? raw.split(",").map((s) => s.trim()).filter(Boolean) : raw);

/** An issue whose message says which part of the value is wrong; it is added after `expected`. */
const detail = (ctx: z.RefinementCtx, message: string) => ctx.addIssue({ code: "custom", message, params: { detail: true } });

const integer = (min: number, max: number): Kind<z.ZodType<number>> => ({
  schema: z.preprocess(digits, z.int().min(min).max(max)),
  expected: `an integer from ${min} to ${max}`,
  placeholder: "INT",
});

const decimal = (min: number, max: number): Kind<z.ZodType<number>> => ({
  schema: z.preprocess(numeric, z.number().min(min).max(max)),
  expected: `a number from ${min} to ${max}`,
  placeholder: "NUMBER",
});

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => ({
  schema: z.enum(values),
  expected: `one of ${values.join(", ")}`,
  placeholder: values.join("|"),
});

const text: Kind<z.ZodType<string>> = { schema: z.string().trim(), expected: "a string", placeholder: "TEXT" };
const nonEmptyText: Kind<z.ZodType<string>> = { schema: z.string().trim().min(1), expected: "a non-empty string", placeholder: "TEXT" };
const file: Kind<z.ZodType<string>> = { ...text, expected: "a file path (empty = none)", placeholder: "FILE" };
// etcd's naming readers list TARGET as a bare prefix and add the "/" themselves, so a slash at
// either end would make keys no resolver asks for.
const etcdServiceName: Kind<z.ZodType<string>> = {
  schema: z.string().trim().regex(/^$|^[^/](.*[^/])?$/),
  expected: "an etcd key prefix with no / at either end (empty = none)",
  placeholder: "NAME",
};
const optionalHttpUrl: Kind<z.ZodType<string>> = {
  schema: z.string().trim().regex(/^$|^https?:\/\/[^\s/]+(\/\S*)?$/),
  expected: "an http:// or https:// URL (empty = none)",
  placeholder: "URL",
};

const isStoreUrl = (raw: string) => {
  if (/^file:.+/.test(raw)) return true;
  if (!raw.startsWith("mysql://")) return false;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not a URL at all: a plain "no", which the loader reports against the key.
    return false;
  }
  return url.hostname !== "" && /^\/[A-Za-z0-9_]+$/.test(url.pathname);
};
const storeUrl: Kind<z.ZodType<string>> = {
  schema: z.string().refine(isStoreUrl),
  expected: "file:PATH or mysql://user:pass@host:port/database",
  placeholder: "URL",
};

/** A YAML list in the file; a comma-separated string (env, flags, or the file) is read as one too. */
const list = (item: z.ZodType<string>, expected: string, placeholder: string): Kind<z.ZodType<string[]>> => ({
  schema: z.preprocess(commaList, z.array(item)),
  expected,
  placeholder: `${placeholder},…`,
  text: (values) => values.join(","),
});

const allowEntry = z
  .string()
  .trim()
  .min(1)
  .superRefine((entry, ctx) => {
    try {
      parseAllowEntry(entry);
    } catch (error) {
      if (!(error instanceof InvalidAllowlistError)) throw error;
      detail(ctx, error.message);
    }
  });

export interface TenantNamespace {
  identity: string;
  /** A gid must start with one of these; "*" grants every gid. */
  prefixes: string[];
}

/** Reads the env and flag form `identity=prefix|prefix;identity2=prefix`. */
function tenantSpec(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  return raw
    .split(";")
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      // The last "=": an identity (a SAN URI) may itself contain one, a prefix may not.
      const at = entry.lastIndexOf("=");
      if (at < 0) return { identity: entry };
      return { identity: entry.slice(0, at).trim(), prefixes: entry.slice(at + 1).split("|").map((p) => p.trim()).filter(Boolean) };
    });
}
const tenantNamespaces: Kind<z.ZodType<TenantNamespace[]>> = {
  schema: z.preprocess(
    tenantSpec,
    z.array(
      z.strictObject({
        identity: z.string().trim().min(1),
        // An empty prefix would match every gid: "*" says that explicitly.
        prefixes: z.preprocess(commaList, z.array(z.string().trim().min(1))),
      }),
    ),
  ),
  expected: 'a list of {identity, prefixes} (in env and flags "identity=prefix|prefix;identity2=prefix")',
  placeholder: "ID=PREFIX|…;…",
  text: (namespaces) => namespaces.map((n) => `${n.identity}=${n.prefixes.join("|")}`).join(";"),
};

/** Reads the env and flag form `name=value,name2=value2`. */
function labelSpec(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  return Object.fromEntries(
    raw
      .split(",")
      .map((entry) => entry.trim())
      .filter(Boolean)
      .map((entry) => {
        const at = entry.indexOf("=");
        return at < 0 ? [entry, undefined] : [entry.slice(0, at).trim(), entry.slice(at + 1).trim()];
      }),
  );
}
const labelName = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const labels: Kind<z.ZodType<Record<string, string>>> = {
  schema: z.preprocess(labelSpec, z.record(z.string().regex(labelName), z.string().trim().min(1).max(128))),
  expected: 'a map of label names to values (in env and flags "name=value,name2=value")',
  placeholder: "NAME=VALUE,…",
  text: (map) => Object.entries(map).map(([name, value]) => `${name}=${value}`).join(","),
};

function option<S extends z.ZodType>(kind: Kind<S>, defaultValue: z.output<S>, description: string, example?: z.output<S>) {
  const schema = kind.schema.default(defaultValue as z.util.NoUndefined<z.output<S>>);
  const render = kind.text ?? String;
  optionDocs.add(schema, {
    description,
    expected: kind.expected,
    placeholder: kind.placeholder,
    text: (value) => render(value as z.output<S>),
    ...(example === undefined ? {} : { example }),
  });
  return schema;
}

function section<Shape extends z.core.$ZodLooseShape>(description: string, shape: Shape) {
  // prefault, not default: an absent section is parsed as {} so its keys get their own defaults.
  // Every key is an option() with a default, so {} is valid input; TypeScript cannot see that
  // through the generic shape.
  const schema = z.strictObject(shape).prefault({} as never);
  sectionDocs.add(schema, { description });
  return schema;
}

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const DEFAULT_PORT = 7460;

export const configSchema = z.strictObject({
  host: option(nonEmptyText, "127.0.0.1", "Interface to listen on (0.0.0.0 or :: for every interface)."),
  port: option(
    integer(0, 65535),
    DEFAULT_PORT,
    "The one port for gRPC, gRPC-Web, Connect, reflection, health and /healthz (7233 is Temporal's); 0 picks a free port.",
  ),
  store: option(
    storeUrl,
    "file:./data/accord.db",
    "file:PATH (embedded SQLite, one coordinator per file) or mysql://user:pass@host:port/db (MySQL 8, MariaDB >= 10.6, TiDB; " +
      "several coordinators may share it; the database is created if missing).",
  ),
  log: section("Logging.", {
    level: option(oneOf(LOG_LEVELS), "info", "The least severe level written."),
  }),
  mysql: section("The MySQL, MariaDB or TiDB store (unused with file: stores).", {
    poolSize: option(integer(1, 1000), 16, "Database connections per coordinator."),
    lockWaitTimeoutSeconds: option(
      integer(1, 3600),
      5,
      "Seconds a statement waits for a row lock held by another session (innodb_lock_wait_timeout; InnoDB's own default is 50), " +
        "so a coordinator paused in the middle of a write cannot stall the others for long.",
    ),
  }),
  limits: section("What one request, connection or stream may use.", {
    maxMessageBytes: option(
      integer(1024, 1024 * 1024 * 1024),
      16 * 1024 * 1024,
      "Largest request message accepted (bytes); larger ones get RESOURCE_EXHAUSTED.",
    ),
    maxPayloadBytes: option(integer(1, 256 * 1024 * 1024), 1024 * 1024, "Largest branch payload (bytes)."),
    maxBranches: option(integer(1, 100_000), 1000, "Most branches in one transaction."),
    idleConnectionMs: option(
      integer(100, 3_600_000),
      60_000,
      "A connection that sends nothing for this long before its first request is closed, and so is an HTTP/1.1 one " +
        "silent this long at any time (e.g. a slowloris stuck in its headers). Keep it above engine.maxWaitMs.",
    ),
    maxConcurrentStreams: option(
      integer(1, 1_000_000),
      1000,
      "HTTP/2 streams one connection may have open at once (advertised in SETTINGS); more are refused with REFUSED_STREAM.",
    ),
    idleStreamMs: option(
      integer(100, 3_600_000),
      60_000,
      "An HTTP/2 stream with no frame either way for this long is reset while it waits on the client (an unfinished " +
        "request, an unread response); a quiet WatchTransaction or a Submit with wait is not.",
    ),
  }),
  ops: section(
    "Plain-HTTP listener for probes and scrapes: GET /healthz and GET /metrics only, no TLS and no RPCs, for when the main port requires client certificates.",
    {
      host: option(nonEmptyText, "127.0.0.1", "Interface of the ops listener (0.0.0.0 in Kubernetes, where the kubelet probes the pod IP)."),
      port: option(integer(0, 65535), 0, "Port of the ops listener; 0 = no ops listener."),
    },
  ),
  shutdown: section("Graceful stop, on SIGTERM or SIGINT.", {
    graceMs: option(integer(0, 600_000), 10_000, "How long a graceful stop waits for in-flight calls before closing them."),
  }),
  engine: section("How the engine runs transactions; the retry and timeout keys are the defaults for transactions that set none.", {
    coordinatorId: option(text, "", "Identity of this coordinator in lease rows and in its etcd key; empty = host-pid-random."),
    leaseMs: option(
      integer(100, 3_600_000),
      10_000,
      "Lease on a running transaction, renewed while it runs; a dead coordinator's work is taken over after this.",
    ),
    pollIntervalMs: option(integer(10, 60_000), 500, "How often due work (retries, crash leftovers) is looked for."),
    claimBatch: option(integer(1, 10_000), 64, "Most transactions claimed per poll."),
    maxRunningTransactions: option(integer(1, 1_000_000), 2000, "Bulkhead: transactions run at once by this coordinator."),
    maxCallsPerHost: option(integer(1, 100_000), 64, "Bulkhead: concurrent calls to one branch host."),
    branchTimeoutMs: option(
      integer(1, 3_600_000),
      10_000,
      "Default branch_timeout: how long one branch call may take; a timed-out call counts as an error.",
    ),
    retryInitialMs: option(integer(1, 3_600_000), 1000, "Default retry.initial_interval: delay before the first retry of an erroring call."),
    retryMultiplier: option(decimal(1, 100), 2, "Default retry.multiplier: factor applied to the delay after each further error."),
    retryMaxMs: option(integer(1, 86_400_000), 60_000, "Default retry.max_interval: upper bound on the delay between retries."),
    retryMaxAttempts: option(
      integer(1, 1_000_000),
      10,
      "Default retry.max_attempts: after this many attempts of one operation the transaction is marked stalled " +
        "(retries go on at the longest delay; nothing is dropped).",
    ),
    stalledAfterMs: option(integer(1, 30 * 86_400_000), 3_600_000, "A transaction unfinished this long after it was accepted is marked stalled too."),
    ongoingIntervalMs: option(
      integer(1, 3_600_000),
      5000,
      "Default retry.ongoing_interval: fixed delay before asking again a target that answered ONGOING.",
    ),
    preparedTimeoutMs: option(
      integer(1, 86_400_000),
      30_000,
      "Default prepared_timeout (TCC, XA, MSG): how long a transaction may stay PREPARED before the coordinator aborts it " +
        "(TCC, XA) or calls query_prepared (MSG).",
    ),
    maxWaitMs: option(integer(0, 3_600_000), 30_000, "Longest Submit-with-wait when the caller set no deadline."),
    // The floors exist so no one can make the coordinator hammer a failing service, or time calls
    // out before they can answer; this config is held to them too.
    minRetryIntervalMs: option(
      integer(1, 3_600_000),
      100,
      "Floor for retry.initial_interval and retry.max_interval, in requests and in this config (retryInitialMs, retryMaxMs), " +
        "so no one can make the coordinator hammer a failing service.",
    ),
    minOngoingIntervalMs: option(
      integer(1, 3_600_000),
      100,
      "Floor for retry.ongoing_interval, in requests and in this config (ongoingIntervalMs).",
    ),
    minBranchTimeoutMs: option(
      integer(1, 3_600_000),
      100,
      "Floor for branch_timeout, in requests and in this config (branchTimeoutMs), so calls are not timed out before they can answer.",
    ),
  }),
  retention: section(
    "Deleting finished transactions. Every coordinator runs it in the background, at a jittered interval, in bounded batches; " +
      "coordinators sharing a database may run it at once (a row is deleted once).",
    {
      finishedAfterMs: option(
        integer(0, 10 * 365 * 86_400_000),
        7 * 86_400_000,
        "A SUCCEEDED or FAILED transaction is deleted this long after it finished, with its branches, its request ids (a " +
          "request_id reused after that is a new request) and its admin actions; GetTransaction then answers NOT_FOUND. 0 = keep them for ever.",
      ),
      intervalMs: option(
        integer(10, 86_400_000),
        300_000,
        "How often a coordinator looks for transactions past retention; each wait is jittered by up to a half, so coordinators " +
          "started together drift apart.",
      ),
      batchSize: option(integer(1, 100_000), 500, "Most transactions deleted per database transaction, so no delete holds the database long."),
      maxBatchesPerRun: option(
        integer(1, 1_000_000),
        100,
        "Most batches per run; what is left waits for the next run, so a large first clean-up is spread out.",
      ),
    },
  ),
  tracing: section("OpenTelemetry spans for RPCs, branch calls and store writes, joining the callers' traces (W3C traceparent).", {
    otlpEndpoint: option(
      optionalHttpUrl,
      "",
      "OTLP/HTTP traces URL spans are sent to in batches, e.g. http://127.0.0.1:4318/v1/traces; empty = tracing off, costing " +
        "nothing. traceparent is stored and sent to branches either way.",
      "http://127.0.0.1:4318/v1/traces",
    ),
    serviceName: option(nonEmptyText, "accord", "service.name of the spans (service.instance.id is engine.coordinatorId)."),
  }),
  cluster: section("etcd registration, so clients can discover coordinators. The database, not etcd, decides who runs what.", {
    etcdEndpoints: option(
      list(
        z.string().trim().regex(/^https?:\/\/[^/]+$/),
        "a list of http(s)://host:port etcd endpoints",
        "URL",
      ),
      [],
      "etcd endpoints (http:// or https://); none = no registration. etcd being down never stops the coordinator: it keeps " +
        "serving and keeps trying.",
      ["http://10.0.0.6:2379"],
    ),
    prefix: option(nonEmptyText, "accord/v1/coordinators/", 'Key prefix; each coordinator puts PREFIX<id> = {"address","version","zone"}.'),
    namingPrefix: option(
      etcdServiceName,
      "accord/v1/grpc",
      'Service name in etcd\'s standard gRPC naming format, which grpc-go\'s resolver reads as etcd:///NAME: each coordinator also ' +
        'puts NAME/<host:port> = {"Op":0,"Addr":"host:port","Metadata":{"id","version","zone","labels","tls"}} under the same lease. ' +
        "Must not overlap prefix; empty = not written.",
    ),
    leaseTtlSeconds: option(
      integer(2, 3600),
      10,
      "TTL of the lease the key lives under (kept alive while the coordinator runs; a killed coordinator's key expires with it).",
    ),
    zone: option(text, "", "Free-form zone, for clients that prefer nearby coordinators."),
    labels: option(
      labels,
      {},
      "Labels registered with this coordinator (both etcd keys), for canary routing in clients: e.g. track=canary, version=0.3.0.",
      { track: "canary", version: "0.3.0" },
    ),
    advertiseUrl: option(text, "", "The URL clients should dial; empty = this coordinator's own URL as it listens (http(s)://host:port)."),
    etcdCaFile: option(file, "", "CA that verifies etcd's certificate (https:// endpoints); etcdCertFile and etcdKeyFile are used only with it."),
    etcdCertFile: option(file, "", "Client certificate for etcd's client-certificate auth."),
    etcdKeyFile: option(file, "", "Key of etcdCertFile."),
  }),
  security: section("TLS, client identities and what they may call, and where branch calls may go.", {
    tlsCertFile: option(
      file,
      "",
      "PEM certificate of the coordinator's one port; with tlsKeyFile the port speaks TLS only (1.2 minimum). " +
        "Re-read when the file changes and on SIGHUP.",
    ),
    tlsKeyFile: option(file, "", "PEM key of tlsCertFile: set both or neither."),
    tlsCaFile: option(file, "", "CA that signs client certificates (for mtls)."),
    mtls: option(
      oneOf(["off", "optional", "required"] as const),
      "off",
      "Client certificates: off, optional (verified when sent) or required. Needs tlsCertFile, tlsKeyFile and tlsCaFile.",
    ),
    coordinatorCallers: option(
      list(nonEmptyText.schema, "a list of identities", "ID"),
      ["*"],
      'Identities (certificate SAN URI, then SAN DNS, then CN) that may call CoordinatorService; "*" = anyone.',
    ),
    adminCallers: option(
      list(nonEmptyText.schema, "a list of identities", "ID"),
      [],
      'Identities that may call AdminService; none = nobody, "*" = anyone.',
      ["ops.example"],
    ),
    tenantPrefixes: option(
      tenantNamespaces,
      [],
      "Gid namespaces: a listed identity only touches gids starting with one of its prefixes. Once any is set, a caller " +
        'not listed (anonymous ones included) gets no gid at all unless an entry for identity "*" grants it some; a prefix ' +
        '"*" grants every gid.',
      [
        { identity: "spiffe://shop/orders", prefixes: ["orders-"] },
        { identity: "ops.example", prefixes: ["*"] },
      ],
    ),
    allowedTargetHosts: option(
      list(allowEntry, 'a list of host, host:port or host:from-to entries ("*.domain" and [IPv6] allowed)', "HOST"),
      ["127.0.0.1", "localhost", "::1"],
      'Hosts branch targets may name: exact names or IPs, or "*.domain"; "*" = any (not advised). Each may carry a port or ' +
        "range (host:8080, host:8000-8099, [::1]:9000). The coordinator's own ports, its etcd endpoints and its database " +
        "are refused unless an entry names that exact host and port.",
      ["orders.internal:8080", "10.0.0.7:9000-9099", "*.svc.cluster.local:443"],
    ),
    allowedTargetSchemes: option(list(nonEmptyText.schema, "a list of schemes", "SCHEME"), ["http", "https", "grpc", "grpcs"], "Schemes branch targets may use."),
    branchCaFile: option(file, "", "CA that verifies https:// and grpcs:// branches; empty = the system CAs."),
    branchCertFile: option(
      file,
      "",
      "Client certificate the coordinator presents to https:// and grpcs:// branches, so they can require mTLS from it.",
    ),
    branchKeyFile: option(file, "", "Key of branchCertFile."),
  }),
});

/** One typed, validated configuration (see docs/accord.example.yaml). */
export type AccordConfig = z.output<typeof configSchema>;
export type EngineConfig = AccordConfig["engine"];
export type ClusterConfig = AccordConfig["cluster"];
export type RetentionConfig = AccordConfig["retention"];
export type SecurityConfig = AccordConfig["security"];

/** One key of the configuration, as the loader, `--help` and the example file see it. */
export interface ConfigOption {
  /** Dotted path, e.g. `engine.leaseMs`: the key's name in messages. */
  key: string;
  path: string[];
  schema: z.ZodType;
  doc: OptionDoc;
  defaultValue: unknown;
}

export interface ConfigSection {
  /** Empty for the top level. */
  name: string;
  description: string;
  options: ConfigOption[];
}

/** Every key, grouped by section, in schema order. */
export const CONFIG_SECTIONS: readonly ConfigSection[] = (() => {
  const top: ConfigSection = { name: "", description: "", options: [] };
  const sections = [top];
  const leaf = (path: string[], schema: z.ZodType): ConfigOption => {
    const doc = optionDocs.get(schema);
    if (!doc) throw new Error(`config key ${path.join(".")} was not declared with option()`);
    return { key: path.join("."), path, schema, doc, defaultValue: schema.parse(undefined) };
  };
  for (const [name, schema] of Object.entries(configSchema.shape) as [string, z.ZodType][]) {
    const doc = sectionDocs.get(schema);
    if (!doc) {
      top.options.push(leaf([name], schema));
      continue;
    }
    const inner = (schema as z.ZodPrefault).unwrap() as z.ZodObject;
    const options = Object.entries(inner.shape).map(([key, s]) => leaf([name, key], s as z.ZodType));
    sections.push({ name, description: doc.description, options });
  }
  return sections;
})();

export const CONFIG_OPTIONS: readonly ConfigOption[] = CONFIG_SECTIONS.flatMap((s) => s.options);
