import { isDeepStrictEqual } from "node:util";
import type { Logger } from "pino";
import { ConfigError, configFileOf, loadConfig, type AccordConfig, type ConfigSources, type LogLevel } from "../config.js";
import { CONFIG_OPTIONS, CONFIG_SECTIONS, LOG_LEVELS, type ConfigOption } from "./schema.js";
import { watchFiles } from "./watch-files.js";

// The running configuration, and how it changes without a restart (README, "Reload and log
// level"). A reload reads the same sources start-up read (flags and environment still win over
// the file); the keys that can change live replace the running values at once, the others are
// reported and kept until the next start.

/**
 * The keys (or whole sections, ending in ".") whose new value a reload applies to the running
 * coordinator, because every component reads them where it uses them (through LiveConfig.view or
 * a change listener). Every other key is read once at start-up to build something that lives as
 * long as the process — the listeners and their transport limits, the store and its pool, etcd
 * registration, TLS (the certificate files are re-read when they change, their paths are not),
 * the engine's identity and the period of its lease renewals — so a reload reports it as needing
 * a restart. A new key is restart-only until it is listed here: a reload never claims to have
 * applied a value nothing reads again.
 */
export const LIVE_KEYS: readonly string[] = [
  "log.level",
  "limits.maxPayloadBytes",
  "limits.maxBranches",
  "shutdown.graceMs",
  "engine.pollIntervalMs",
  "engine.claimBatch",
  "engine.maxRunningTransactions",
  "engine.maxCallsPerHost",
  "engine.branchTimeoutMs",
  "engine.retryInitialMs",
  "engine.retryMultiplier",
  "engine.retryMaxMs",
  "engine.retryMaxAttempts",
  "engine.stalledAfterMs",
  "engine.ongoingIntervalMs",
  "engine.preparedTimeoutMs",
  "engine.maxWaitMs",
  "engine.minRetryIntervalMs",
  "engine.minOngoingIntervalMs",
  "engine.minBranchTimeoutMs",
  "retention.",
  "security.coordinatorCallers",
  "security.adminCallers",
  "security.tenantPrefixes",
  "security.allowedTargetHosts",
  "security.allowedTargetSchemes",
];

/** Whether a new value of `key` applies to the running coordinator (else it needs a restart). */
export function appliesLive(key: string): boolean {
  return LIVE_KEYS.some((k) => (k.endsWith(".") ? key.startsWith(k) : key === k));
}

/** What a reload did. */
export type ReloadResult =
  | {
      ok: true;
      trigger: string;
      /** Keys whose new values now apply. */
      applied: string[];
      /** Keys whose new values need a restart; the running values were kept. */
      restartNeeded: string[];
    }
  | {
      ok: false;
      trigger: string;
      /** Why nothing changed: a ConfigError naming the key, or what else stopped the read. */
      error: Error;
    };

/** Called after the running configuration changed; `changed` lists the keys. */
export type ChangeListener = (next: AccordConfig, previous: AccordConfig, changed: readonly string[]) => void;

export interface LiveConfig {
  /**
   * The running configuration. Each change replaces it (and each section that changed) with a
   * new object, never mutating the old one, so a caller may hold on to what it read.
   */
  current(): AccordConfig;
  /**
   * The same shape, read through: each key reads the running value when it is read. For
   * components that read their settings as they use them (the engine, the commands); restart-only
   * keys never change, so reading them here is reading the start-up value.
   */
  readonly view: AccordConfig;
  /** The config file the sources name, watched by watch(). */
  readonly file: string | undefined;
  /**
   * Reads the sources again and applies what can change live. Never throws: an invalid source
   * changes nothing and is logged (naming the key) and returned as a failure.
   */
  reload(trigger?: string): ReloadResult;
  /** Changes the running log level (AdminService.SetLogLevel; a reload applies log.level here too). */
  setLogLevel(level: LogLevel): void;
  onChange(listener: ChangeListener): () => void;
  /** Every reload's result, for counting reloads and failures. */
  onReload(listener: (result: ReloadResult) => void): () => void;
  /** Reloads when the config file changes; returns a function that stops watching. */
  watch(): () => void;
}

export function isLiveConfig(value: AccordConfig | LiveConfig): value is LiveConfig {
  return typeof (value as Partial<LiveConfig>).current === "function";
}

/**
 * Holds the running configuration, starting from `initial` (what start-up loaded from `sources`).
 * Without sources there is nothing to read again: reload() changes nothing, setLogLevel still
 * works. The logger's level follows log.level from the first change on (children included: pino
 * children read their parent's level unless given one of their own).
 */
export function createLiveConfig(initial: AccordConfig, sources: ConfigSources | undefined, logger: Logger): LiveConfig {
  let running = initial;
  // The last configuration read from the sources. A reload applies the live keys that changed
  // since then, not every key that differs from the running value: a level set by SetLogLevel
  // stays until the file's log.level itself changes (or the next start).
  let loaded = initial;
  const changeListeners = new Set<ChangeListener>();
  const reloadListeners = new Set<(result: ReloadResult) => void>();
  const file = sources ? configFileOf(sources) : undefined;

  const notify = <A extends unknown[]>(listeners: Set<(...args: A) => void>, ...args: A) => {
    for (const listener of listeners) {
      try {
        listener(...args);
      } catch (error) {
        // One component failing to follow must not keep the others on the old values.
        logger.error({ err: error }, "applying a configuration change failed in one component");
      }
    }
  };

  /**
   * Makes `values` the running ones and tells the listeners. `announce` is logged at info while
   * either the old or the new level shows it, so raising the level to warn still says so.
   */
  const apply = (values: Map<ConfigOption, unknown>, announce: (changed: string[]) => void) => {
    const previous = running;
    const next = withValues(previous, values);
    const changed = [...values.keys()].map((o) => o.key);
    const visibleNow = logger.isLevelEnabled("info");
    if (visibleNow) announce(changed);
    running = next;
    if (next.log.level !== previous.log.level) logger.level = next.log.level;
    if (!visibleNow) announce(changed);
    notify(changeListeners, next, previous, changed);
  };

  const fail = (trigger: string, error: Error): ReloadResult => {
    const key = error instanceof ConfigError ? error.key : undefined;
    logger.error({ err: error, key, trigger, file }, `config reload failed, nothing changed: ${error.message}`);
    const result: ReloadResult = { ok: false, trigger, error };
    notify(reloadListeners, result);
    return result;
  };

  const live: LiveConfig = {
    current: () => running,
    view: readThrough(() => running),
    file,

    reload(trigger = "reload") {
      if (!sources) {
        const result: ReloadResult = { ok: true, trigger, applied: [], restartNeeded: [] };
        logger.info({ trigger }, "config reload: no config sources to read again; nothing changed");
        notify(reloadListeners, result);
        return result;
      }
      let fresh: AccordConfig;
      try {
        fresh = loadConfig(sources);
      } catch (error) {
        // Not only ConfigError: whatever stopped the read, the running config stays and it is logged.
        return fail(trigger, error instanceof Error ? error : new Error(String(error)));
      }
      const changes = new Map<ConfigOption, unknown>();
      const restartNeeded: string[] = [];
      for (const option of CONFIG_OPTIONS) {
        const value = valueAt(fresh, option.path);
        if (appliesLive(option.key)) {
          const changedInSources = !isDeepStrictEqual(value, valueAt(loaded, option.path));
          if (changedInSources && !isDeepStrictEqual(value, valueAt(running, option.path))) changes.set(option, value);
        } else if (!isDeepStrictEqual(value, valueAt(running, option.path))) {
          restartNeeded.push(option.key);
        }
      }
      loaded = fresh;
      if (restartNeeded.length > 0) {
        logger.warn({ keys: restartNeeded, trigger, file }, `changes to ${restartNeeded.join(", ")} need a restart; kept the running values`);
      }
      if (changes.size > 0) {
        apply(changes, (applied) =>
          logger.info({ applied: Object.fromEntries([...changes].map(([o, v]) => [o.key, v])), trigger, file }, `config reloaded: ${applied.join(", ")} applied`),
        );
      } else if (restartNeeded.length === 0) {
        logger.info({ trigger, file }, "config reloaded: nothing changed");
      }
      const result: ReloadResult = { ok: true, trigger, applied: [...changes.keys()].map((o) => o.key), restartNeeded };
      notify(reloadListeners, result);
      return result;
    },

    setLogLevel(level) {
      if (!LOG_LEVELS.includes(level)) throw new ConfigError("log.level", `one of ${LOG_LEVELS.join(", ")}`, level, "setLogLevel");
      const from = running.log.level;
      if (level === from) return;
      apply(new Map([[optionOf("log.level"), level]]), () => logger.info({ from, to: level }, `log level set to ${level}`));
    },

    onChange(listener) {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },

    onReload(listener) {
      reloadListeners.add(listener);
      return () => reloadListeners.delete(listener);
    },

    watch() {
      if (!file) return () => {};
      logger.debug({ file }, "watching the config file");
      return watchFiles([file], () => live.reload("file changed"));
    },
  };
  return live;
}

const optionOf = (key: string): ConfigOption => {
  const option = CONFIG_OPTIONS.find((o) => o.key === key);
  if (!option) throw new Error(`no config key ${key}`);
  return option;
};

function valueAt(config: AccordConfig, path: readonly string[]): unknown {
  let node: unknown = config;
  for (const part of path) node = (node as Record<string, unknown>)[part];
  return node;
}

/** A copy of `config` with `values` set; sections without a change stay the same objects. */
function withValues(config: AccordConfig, values: Map<ConfigOption, unknown>): AccordConfig {
  const next: Record<string, unknown> = { ...config };
  for (const [option, value] of values) {
    const [first, second] = option.path as [string, string?];
    if (second === undefined) {
      next[first] = value;
      continue;
    }
    const section = next[first] as Record<string, unknown>;
    // Copy a section once, the first time one of its keys changes.
    next[first] = section === (config as Record<string, unknown>)[first] ? { ...section, [second]: value } : Object.assign(section, { [second]: value });
  }
  return next as AccordConfig;
}

/** An object shaped like the configuration whose every key reads `current()` when read. */
function readThrough(current: () => AccordConfig): AccordConfig {
  const view: Record<string, unknown> = {};
  for (const section of CONFIG_SECTIONS) {
    if (section.name === "") {
      for (const option of section.options) {
        Object.defineProperty(view, option.key, { enumerable: true, get: () => valueAt(current(), option.path) });
      }
      continue;
    }
    const inner: Record<string, unknown> = {};
    for (const option of section.options) {
      const [name, key] = option.path as [string, string];
      Object.defineProperty(inner, key, { enumerable: true, get: () => (current() as unknown as Record<string, Record<string, unknown>>)[name]![key] });
    }
    view[section.name] = Object.freeze(inner);
  }
  return Object.freeze(view) as unknown as AccordConfig;
}
