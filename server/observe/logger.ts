import { pino, type Logger } from "pino";
import type { LogLevel } from "../config.js";

export type { Logger };

/** Structured JSON logs on stdout; the level can change at run time (logger.level = …). */
export function createLogger(level: LogLevel): Logger {
  return pino({ level, base: { service: "accord" } });
}
