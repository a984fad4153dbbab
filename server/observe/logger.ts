import { pino, stdSerializers, type DestinationStream, type Logger, type LoggerOptions } from "pino";
import type { LogLevel } from "../config.js";

export type { Logger };

/**
 * Log records echo what callers and branch services sent (a store error carries the statement's
 * parameters, a branch's refusal its body), so what one record can write is bounded: a 100,000-
 * character gid_prefix once made a 300 KB line. Strings are cut to LOG_STRING_CHARS with a marker
 * saying how much was cut; a line that is still over LOG_LINE_BYTES (many long fields) is
 * rewritten with tighter limits, so no line ever exceeds it.
 */
export const LOG_STRING_CHARS = 4096;
export const LOG_LINE_BYTES = 32 * 1024;

interface Limits {
  stringChars: number;
  /** Per stack line, so a huge message on the first line does not push the frames out. */
  stackLineChars: number;
  entries: number;
  depth: number;
}

const RECORD: Limits = { stringChars: LOG_STRING_CHARS, stackLineChars: 512, entries: 100, depth: 8 };
/** For a line that is over LOG_LINE_BYTES even with RECORD's limits. */
const SHRUNK: Limits = { stringChars: 256, stackLineChars: 128, entries: 16, depth: 3 };

function clip(s: string, max: number): string {
  if (s.length <= max) return s;
  // Never end on half a surrogate pair: it would be written as an invalid character.
  const end = /[\uD800-\uDBFF]/.test(s.charAt(max - 1)) ? max - 1 : max;
  return `${s.slice(0, end)}…[${s.length - end} of ${s.length} chars cut]`;
}

function bound(value: unknown, limits: Limits, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === "string") return clip(value, limits.stringChars);
  if (typeof value !== "object" || value === null) return value;
  if (seen.has(value)) return "[Circular]";
  if (depth >= limits.depth) return "[nested too deep]";
  // Buffers and typed arrays would be written byte by byte ({"type":"Buffer","data":[…]}).
  if (ArrayBuffer.isView(value)) return `[${value.constructor.name} of ${value.byteLength} bytes]`;
  if (value instanceof Error) return bound(serializeError(value, limits), limits, depth, seen);
  if (value instanceof Date) return value;
  seen.add(value);
  try {
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === "function") return bound(toJSON.call(value), limits, depth + 1, seen);
    if (Array.isArray(value)) {
      const items = value.slice(0, limits.entries).map((v) => bound(v, limits, depth + 1, seen));
      if (value.length > limits.entries) items.push(`…[${value.length - limits.entries} more items]`);
      return items;
    }
    const out: Record<string, unknown> = {};
    const keys = Object.keys(value);
    for (const key of keys.slice(0, limits.entries)) {
      out[clip(key, limits.stackLineChars)] = bound((value as Record<string, unknown>)[key], limits, depth + 1, seen);
    }
    if (keys.length > limits.entries) out["…"] = `${keys.length - limits.entries} more keys`;
    return out;
  } finally {
    seen.delete(value);
  }
}

/** pino's error serializer (message and stack with causes, own fields), as a plain object. */
function serializeError(error: Error, limits: Limits): Record<string, unknown> {
  const serialized = { ...(stdSerializers.err(error) as unknown as Record<string, unknown>) };
  if (typeof serialized.stack === "string") {
    serialized.stack = serialized.stack
      .split("\n")
      .map((line) => clip(line, limits.stackLineChars))
      .join("\n");
  }
  return serialized;
}

/** The last guard: a line over the cap is parsed and written again with SHRUNK's limits. */
function capLine(line: string): string {
  // A JSON line is at most 3 UTF-8 bytes per UTF-16 unit, so most lines need no measuring.
  if (line.length * 3 <= LOG_LINE_BYTES || Buffer.byteLength(line) <= LOG_LINE_BYTES) return line;
  const note = `log line of ${Buffer.byteLength(line)} bytes cut to fit the ${LOG_LINE_BYTES}-byte cap`;
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${JSON.stringify({ level: 60, time: Date.now(), msg: note })}\n`;
  }
  const shrunk = `${JSON.stringify({ ...(bound(record, SHRUNK) as Record<string, unknown>), logLineCut: note })}\n`;
  if (Buffer.byteLength(shrunk) <= LOG_LINE_BYTES) return shrunk;
  const { level, time, pid, hostname, service, msg } = record;
  return `${JSON.stringify({ level, time, pid, hostname, service, msg: bound(msg, SHRUNK), logLineCut: note })}\n`;
}

/** pino options that bound every record as described at LOG_STRING_CHARS. */
function boundedLogOptions(level: LogLevel): LoggerOptions {
  return {
    level,
    base: { service: "accord" },
    formatters: {
      // Runs before serializers: errors anywhere in the record become bounded plain objects here.
      // Child bindings (logger.child) are not passed through it; only the line cap bounds them.
      log: (record) => bound(record, RECORD) as Record<string, unknown>,
    },
    serializers: {
      // The default err serializer would serialize the plain object formatters.log made again.
      err: (value: unknown) => (value instanceof Error ? bound(value, RECORD) : value),
    },
    hooks: {
      logMethod(args, method) {
        const bounded: unknown[] = args.map((a) => (typeof a === "string" ? clip(a, LOG_STRING_CHARS) : a));
        // With no message, pino writes the error's message unbounded: pass it in already cut.
        const first = bounded[0] as { err?: unknown; msg?: unknown } | undefined;
        if (bounded.length === 1 && typeof first === "object" && first !== null) {
          const err = first instanceof Error ? first : first.msg === undefined ? first.err : undefined;
          if (err instanceof Error) bounded.push(clip(err.message, LOG_STRING_CHARS));
        }
        method.apply(this, bounded as Parameters<typeof method>);
      },
      streamWrite: capLine,
    },
  };
}

/** Structured JSON logs on stdout (or `destination`); the level can change at run time (logger.level = …). */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = boundedLogOptions(level);
  return destination ? pino(options, destination) : pino(options);
}
