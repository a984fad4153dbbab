import { fromJsonString } from "@bufbuild/protobuf";
import { durationMs, type Duration } from "@bufbuild/protobuf/wkt";
import { TransactionOptionsSchema } from "../../gen/accord/v1/transaction_pb.js";
import type { EngineConfig } from "../config.js";

/** A transaction's options with the coordinator's defaults filled in, in milliseconds. */
export interface EffectivePolicy {
  branchTimeoutMs: number;
  timeoutToFailMs: number | undefined;
  preparedTimeoutMs: number;
  concurrent: boolean;
  traceparent: string;
  retry: {
    initialMs: number;
    multiplier: number;
    maxMs: number;
    maxAttempts: number;
    ongoingMs: number;
    /** Unfinished this long after acceptance: stalled. */
    maxElapsedMs: number;
  };
}

const ms = (d: Duration | undefined): number | undefined => {
  if (!d) return undefined;
  const value = durationMs(d);
  return value > 0 ? value : undefined;
};

/** Reads the stored options JSON (see TransactionRecord.options). */
export function effectivePolicy(optionsJson: string, defaults: EngineConfig): EffectivePolicy {
  const options = fromJsonString(TransactionOptionsSchema, optionsJson);
  const retry = options.retry;
  // Floors again here: rows stored before they existed, or before they were raised, obey them too.
  const atLeast = (value: number, floor: number) => Math.max(value, floor);
  return {
    branchTimeoutMs: atLeast(ms(options.branchTimeout) ?? defaults.branchTimeoutMs, defaults.minBranchTimeoutMs),
    timeoutToFailMs: ms(options.timeoutToFail),
    preparedTimeoutMs: ms(options.preparedTimeout) ?? defaults.preparedTimeoutMs,
    concurrent: options.concurrent,
    traceparent: options.traceparent,
    retry: {
      initialMs: atLeast(ms(retry?.initialInterval) ?? defaults.retryInitialMs, defaults.minRetryIntervalMs),
      multiplier: retry?.multiplier || defaults.retryMultiplier,
      maxMs: atLeast(ms(retry?.maxInterval) ?? defaults.retryMaxMs, defaults.minRetryIntervalMs),
      maxAttempts: retry?.maxAttempts || defaults.retryMaxAttempts,
      ongoingMs: atLeast(ms(retry?.ongoingInterval) ?? defaults.ongoingIntervalMs, defaults.minOngoingIntervalMs),
      maxElapsedMs: ms(retry?.maxElapsed) ?? defaults.stalledAfterMs,
    },
  };
}

/**
 * Capped exponential backoff with "equal jitter": half the delay fixed, half random, so retries
 * of many transactions that failed together spread out without ever retrying immediately.
 */
export function backoffMs(attempts: number, retry: EffectivePolicy["retry"], random: () => number = Math.random): number {
  const exponent = Math.max(0, attempts - 1);
  const base = Math.min(retry.maxMs, retry.initialMs * retry.multiplier ** exponent);
  return Math.round(base / 2 + (random() * base) / 2);
}
