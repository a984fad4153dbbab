import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { CONFIG_OPTIONS, configSchema, type AccordConfig, type ConfigOption, type EngineConfig, type SecurityConfig } from "./config/schema.js";

// Every key, its type, default, meaning and valid values live in ./config/schema.ts; this file
// reads them from the sources. Precedence: flags > environment > file > defaults. A nested key
// `section.someKey` is `ACCORD_SECTION_SOME_KEY` in the environment and `--section-some-key` on
// the command line; the file (`--config`, YAML or JSON) nests it.

export { DEFAULT_PORT, LOG_LEVELS } from "./config/schema.js";
export type { AccordConfig, ClusterConfig, EngineConfig, LogLevel, SecurityConfig, TenantNamespace } from "./config/schema.js";

export function defaultConfig(): AccordConfig {
  return configSchema.parse({});
}

/** A bad configuration value; its message is the one line start-up prints. */
export class ConfigError extends Error {
  constructor(
    /** The key (or flag) the message names, for logs that report it as a field. */
    readonly key: string,
    expected: string,
    got: unknown,
    source: string,
  ) {
    super(`config key "${key}" (${source}): expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = "ConfigError";
  }
}

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c}`).replace(/\./g, "_").toUpperCase();
export const envName = (key: string) => `ACCORD_${snake(key)}`;
export const flagName = (key: string) => `--${snake(key).toLowerCase().replace(/_/g, "-")}`;

export interface ConfigSources {
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
}

/** The config file the sources name (`--config` over ACCORD_CONFIG), if any. */
export function configFileOf({ argv, env }: ConfigSources): string | undefined {
  return parseFlags(argv).get("--config") ?? (env.ACCORD_CONFIG || undefined);
}

/** Reads and validates the configuration; throws ConfigError naming the first bad key. */
export function loadConfig({ argv, env }: ConfigSources): AccordConfig {
  const flags = parseFlags(argv);
  const input: Record<string, unknown> = {};
  const sourceOf = new Map<string, string>();
  const set = (option: ConfigOption, raw: unknown, source: string) => {
    // Each value is checked as it is read, so a bad one is reported against the source it came
    // from even when a higher source overrides it.
    const parsed = option.schema.safeParse(raw);
    if (!parsed.success) throw new ConfigError(option.key, expectedOf(option, parsed.error.issues), raw, source);
    setPath(input, option.path, raw);
    sourceOf.set(option.key, source);
  };
  const configFile = flags.get("--config") ?? env.ACCORD_CONFIG;
  if (configFile) applyFile(configFile, set);
  for (const option of CONFIG_OPTIONS) {
    const fromEnv = env[envName(option.key)];
    if (fromEnv !== undefined && fromEnv !== "") set(option, fromEnv, envName(option.key));
  }
  for (const [flag, value] of flags) {
    if (flag === "--config") continue;
    const option = CONFIG_OPTIONS.find((o) => flagName(o.key) === flag);
    if (!option) throw new ConfigError(flag, "a known flag (--help lists them)", flag, "command line");
    set(option, value, flag);
  }
  const config = resolve(input, (key) => sourceOf.get(key) ?? "configuration");
  checkSecurity(config.security);
  checkMinimums(config.engine);
  return config;
}

type Overrides<T> = T extends readonly unknown[] ? T | string : T extends object ? { [K in keyof T]?: Overrides<T[K]> } : T;
/** Part of a configuration built in code; a list may be given as its env/flag string. */
export type ConfigOverrides = Overrides<AccordConfig>;

/**
 * Fills in defaults and validates each key of a configuration built in code, as the tests build
 * theirs. The checks across keys are loadConfig's alone: a test raises or lowers one key (a
 * floor, an interval) without keeping the others in step with it.
 */
export function resolveConfig(input: ConfigOverrides, source = "configuration"): AccordConfig {
  return resolve(input, () => source);
}

function resolve(input: unknown, sourceOf: (key: string) => string): AccordConfig {
  const parsed = configSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    const key = [...path, issue.keys[0]!].join(".");
    throw new ConfigError(key, "a known key", valueAt(input, [...path, issue.keys[0]!]), sourceOf(key));
  }
  const option = CONFIG_OPTIONS.find((o) => o.path.every((part, i) => path[i] === part));
  if (!option) throw new ConfigError(path.join(".") || "(root)", "a mapping", valueAt(input, path), sourceOf(path.join(".")));
  const issues = parsed.error.issues.filter((i) => option.path.every((part, n) => String(i.path[n]) === part));
  throw new ConfigError(option.key, expectedOf(option, issues), valueAt(input, option.path), sourceOf(option.key));
}

/** The key's own description of a valid value, then what exactly is wrong when a check says so. */
function expectedOf(option: ConfigOption, issues: readonly z.core.$ZodIssue[]): string {
  const details = issues.flatMap((i) => (i.code === "custom" && i.params?.detail ? [i.message] : []));
  return [option.doc.expected, ...details.slice(0, 1)].join("; ");
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

const HELP_FLAGS = new Set(["-h", "--help"]);

/**
 * Whether the command line asks for help or the version instead of a coordinator. Flags are
 * walked as loadConfig reads them, so a flag's value that happens to be "--help" is not a request.
 */
export function commandLineRequest(argv: readonly string[]): "help" | "version" | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (HELP_FLAGS.has(arg)) return "help";
    if (arg === "--version") return "version";
    if (arg.startsWith("--") && !arg.includes("=")) i++;
  }
  return undefined;
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

function applyFile(path: string, set: (option: ConfigOption, raw: unknown, source: string) => void): void {
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
      const option = CONFIG_OPTIONS.find((o) => o.key === key);
      if (option) set(option, value, path);
      else if (CONFIG_OPTIONS.some((o) => o.key.startsWith(`${key}.`))) walk(value, key);
      else throw new ConfigError(key, "a known key", value, path);
    }
  };
  walk(content, "");
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (const part of path.slice(0, -1)) node = (node[part] ??= {}) as Record<string, unknown>;
  node[path.at(-1)!] = value;
}

function valueAt(root: unknown, path: readonly string[]): unknown {
  let node = root;
  for (const part of path) node = node !== null && typeof node === "object" ? (node as Record<string, unknown>)[part] : undefined;
  return node;
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
