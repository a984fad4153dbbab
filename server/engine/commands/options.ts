import { durationMs, type Duration } from "@bufbuild/protobuf/wkt";
import type { TransactionOptions } from "../../../gen/accord/v1/transaction_pb.js";
import type { EngineConfig } from "../../config.js";
import { InvalidInputError } from "./errors.js";

const DAY_MS = 86_400_000;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The floors of engine config that requests are held to. */
export type OptionFloors = Pick<EngineConfig, "minRetryIntervalMs" | "minOngoingIntervalMs" | "minBranchTimeoutMs">;

/** A zero (unset) duration means "the coordinator's default", so the floor applies only to given values. */
function checkDuration(d: Duration | undefined, field: string, maxMs: number, minMs = 0, floorKey = ""): void {
  if (!d) return;
  const valid = d.nanos > -1e9 && d.nanos < 1e9 && (d.seconds >= 0n ? d.nanos >= 0 : d.nanos <= 0);
  if (!valid || durationMs(d) < 0) throw new InvalidInputError(field, "must be a non-negative duration");
  if (durationMs(d) > maxMs) throw new InvalidInputError(field, `must be at most ${maxMs / 1000}s`);
  const given = Number(d.seconds) * 1000 + d.nanos / 1e6;
  if (given > 0 && given < minMs) throw new InvalidInputError(field, `must be 0 (the default) or at least ${minMs}ms (${floorKey})`);
}

/** Checks TransactionOptions; every field is optional, so only given values are checked. */
export function validateOptions(options: TransactionOptions | undefined, floors: OptionFloors, field = "options"): void {
  if (!options) return;
  const retry = options.retry;
  if (retry) {
    checkDuration(retry.initialInterval, `${field}.retry.initial_interval`, DAY_MS, floors.minRetryIntervalMs, "engine.minRetryIntervalMs");
    checkDuration(retry.maxInterval, `${field}.retry.max_interval`, DAY_MS, floors.minRetryIntervalMs, "engine.minRetryIntervalMs");
    checkDuration(retry.ongoingInterval, `${field}.retry.ongoing_interval`, DAY_MS, floors.minOngoingIntervalMs, "engine.minOngoingIntervalMs");
    checkDuration(retry.maxElapsed, `${field}.retry.max_elapsed`, 30 * DAY_MS);
    if (retry.multiplier !== 0 && !(retry.multiplier >= 1 && retry.multiplier <= 100)) {
      throw new InvalidInputError(`${field}.retry.multiplier`, "must be 0 (default) or between 1 and 100");
    }
    if (retry.maxAttempts < 0) throw new InvalidInputError(`${field}.retry.max_attempts`, "must not be negative");
  }
  checkDuration(options.branchTimeout, `${field}.branch_timeout`, 3_600_000, floors.minBranchTimeoutMs, "engine.minBranchTimeoutMs");
  checkDuration(options.timeoutToFail, `${field}.timeout_to_fail`, 30 * DAY_MS);
  checkDuration(options.preparedTimeout, `${field}.prepared_timeout`, 30 * DAY_MS);
  if (options.traceparent && !TRACEPARENT.test(options.traceparent)) {
    throw new InvalidInputError(`${field}.traceparent`, "must be a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)");
  }
}
