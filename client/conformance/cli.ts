#!/usr/bin/env node
// npm run conformance -- --action URL --compensate URL [options]: checks a branch service against
// the branch contract and prints the result rule by rule (README, "Branch conformance").
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ConformanceOptionsError } from "./caller.js";
import { checkBranchConformance, formatConformanceSummary, formatRule, type BranchConformanceOptions, type ConformanceMode } from "./conformance.js";

const USAGE = `usage: npm run conformance -- [--mode saga|tcc|msg] <targets> [options]

targets (http(s)://host:port/path or grpc(s)://host:port/pkg.Service/Method):
  saga (default)   --action URL --compensate URL
  tcc              --try URL --confirm URL --cancel URL
  msg              --action URL --query-prepared URL [--local-transaction URL]

options:
  --payload STRING           body of every call, as UTF-8 (default {})
  --payload-file PATH        body of every call, raw bytes (e.g. an encoded protobuf message)
  --refuse-payload STRING    a payload the service refuses with 409 (saga, tcc)
  --refuse-payload-file PATH
  --probe URL                GET <probe>?gid=…&branch_id=… answers {"effects": {"<op>": n}}
  --branch-id ID             accord-branch-id (default 01)
  --gid-prefix PREFIX        start of every gid (default conformance-)
  --timeout-ms N             deadline of each call (default 10000)
  --ca FILE --cert FILE --key FILE   TLS for https:// and grpcs:// targets
  --json                     print the report as JSON

Exit status: 0 when no rule failed, 1 when one did, 2 for a usage error.`;

function usageError(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

function parse(): { options: BranchConformanceOptions; json: boolean } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        mode: { type: "string" },
        action: { type: "string" },
        compensate: { type: "string" },
        try: { type: "string" },
        confirm: { type: "string" },
        cancel: { type: "string" },
        "query-prepared": { type: "string" },
        "local-transaction": { type: "string" },
        payload: { type: "string" },
        "payload-file": { type: "string" },
        "refuse-payload": { type: "string" },
        "refuse-payload-file": { type: "string" },
        probe: { type: "string" },
        "branch-id": { type: "string" },
        "gid-prefix": { type: "string" },
        "timeout-ms": { type: "string" },
        ca: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        json: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usageError((error as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const mode = values.mode ?? "saga";
  if (!["saga", "tcc", "msg"].includes(mode)) usageError(`--mode must be saga, tcc or msg (got ${mode})`);
  const bytes = (text: string | undefined, file: string | undefined, name: string) => {
    if (text !== undefined && file !== undefined) usageError(`give --${name} or --${name}-file, not both`);
    return file !== undefined ? new Uint8Array(readFileSync(file)) : text;
  };
  const timeoutMs = values["timeout-ms"] === undefined ? undefined : Number(values["timeout-ms"]);
  if (timeoutMs !== undefined && !(timeoutMs > 0)) usageError(`--timeout-ms must be a positive number (got ${values["timeout-ms"]})`);
  const tls = values.ca || values.cert || values.key ? { ca: values.ca && readFileSync(values.ca), cert: values.cert && readFileSync(values.cert), key: values.key && readFileSync(values.key) } : undefined;
  return {
    json: values.json ?? false,
    options: {
      mode: mode as ConformanceMode,
      action: values.action,
      compensate: values.compensate,
      try: values.try,
      confirm: values.confirm,
      cancel: values.cancel,
      queryPrepared: values["query-prepared"],
      localTransaction: values["local-transaction"],
      payload: bytes(values.payload, values["payload-file"], "payload"),
      refusePayload: bytes(values["refuse-payload"], values["refuse-payload-file"], "refuse-payload"),
      probe: values.probe,
      branchId: values["branch-id"],
      gidPrefix: values["gid-prefix"],
      timeoutMs,
      tls,
    },
  };
}

const { options, json } = parse();
if (!json) {
  const targets = ["action", "compensate", "try", "confirm", "cancel", "queryPrepared", "localTransaction", "probe"] as const;
  const named = targets.filter((t) => options[t]).map((t) => `${t} ${options[t]}`);
  process.stdout.write(`Accord branch conformance (${options.mode}): ${named.join(", ")}\n\n`);
  // Each rule as soon as it is decided: a slow or hanging service shows where it is.
  options.onRule = (rule) => process.stdout.write(`${formatRule(30)(rule)}\n`);
}
let report;
try {
  report = await checkBranchConformance(options);
} catch (error) {
  if (error instanceof ConformanceOptionsError) usageError(error.message);
  throw error;
}
if (json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
else process.stdout.write(`\n${formatConformanceSummary(report)}\n`);
process.exitCode = report.ok ? 0 : 1;
