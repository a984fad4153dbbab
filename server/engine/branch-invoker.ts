import type { BranchOp, Mode } from "../store/index.js";
import { createGrpcInvoker } from "./grpc-invoker.js";
import { createHttpInvoker } from "./http-invoker.js";
import type { BranchOutcome } from "./outcome.js";
import { Semaphore } from "./semaphore.js";
import { parseTarget, type BranchTarget } from "./target.js";
import type { TargetPolicy } from "../security/target-policy.js";
import { startBranchSpan } from "../observe/tracing.js";
import type { BranchCallMetrics } from "../observe/metrics.js";

export interface BranchCall {
  gid: string;
  mode: Mode;
  branchId: string;
  /** Value of the accord-op header; "query" for an MSG back-check. */
  op: BranchOp | "query";
  target: string;
  payload: Uint8Array;
  traceparent: string;
  timeoutMs: number;
  /** The transaction's lease generation, sent as `accord-fence` so a branch can refuse stale callers. */
  fence: number;
  /**
   * Asked right before the call leaves, after any wait for a bulkhead slot: whether this
   * coordinator still holds the lease. When it does not, the call is not sent.
   */
  stillOwned?: () => Promise<boolean>;
}

export interface BranchInvoker {
  invoke(call: BranchCall): Promise<BranchOutcome>;
  /**
   * A reloaded engine.maxCallsPerHost: every host's bulkhead and connection pool take it at once,
   * so calls already waiting go in when it grew.
   */
  setMaxCallsPerHost(limit: number): void;
  close(): void;
}

export interface BranchInvokerOptions {
  /** Bulkhead: concurrent calls per target host, so one slow service cannot take every slot. */
  maxCallsPerHost: number;
  /** Checked again before every call, so no request ever goes to a target outside it. */
  targets?: TargetPolicy;
  /** For https:// and grpcs://: the CA to verify branches, and the coordinator's client certificate. */
  tls?: OutboundTls;
  /** Told about every call that left (not the refused or unsent ones). */
  metrics?: BranchCallMetrics;
}

export interface OutboundTls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Calls branch targets over HTTP(S) or gRPC with the accord-* headers and a per-call timeout. */
export function createBranchInvoker(options: BranchInvokerOptions): BranchInvoker {
  let maxCallsPerHost = options.maxCallsPerHost;
  const http = createHttpInvoker({ maxSocketsPerHost: maxCallsPerHost, tls: options.tls });
  const grpc = createGrpcInvoker(options.tls);
  const hosts = new Map<string, Semaphore>();
  // Parsing a URL and checking the policy per call showed in the invoker's profile; targets
  // repeat (a few endpoints per service), so each is parsed and checked once. Bounded, and
  // emptied when the policy changes (a reloaded allowlist).
  const parsed = new Map<string, { target: BranchTarget; refusal: string | undefined; host: string }>();
  let policyGeneration = options.targets?.generation;
  const resolve = (raw: string) => {
    if (options.targets && options.targets.generation !== policyGeneration) {
      parsed.clear();
      policyGeneration = options.targets.generation;
    }
    let entry = parsed.get(raw);
    if (!entry) {
      const target = parseTarget(raw);
      const url = target.kind === "http" ? target.url : new URL(raw);
      entry = { target, refusal: options.targets?.refusal(url), host: options.metrics?.hostLabel(url) ?? "" };
      if (parsed.size >= 10_000) parsed.clear();
      parsed.set(raw, entry);
    }
    return entry;
  };
  const bulkhead = (hostKey: string) => {
    let semaphore = hosts.get(hostKey);
    if (!semaphore) {
      // Hosts come from targets (a wildcard or a port range allows many): forget idle ones
      // rather than keep one per host ever called. An idle bulkhead holds no state worth keeping.
      if (hosts.size >= 10_000) for (const [key, idle] of hosts) if (idle.inUse === 0) hosts.delete(key);
      hosts.set(hostKey, (semaphore = new Semaphore(maxCallsPerHost)));
    }
    return semaphore;
  };

  return {
    async invoke(call) {
      // Targets were validated at Submit; a bad one here is stored data gone wrong: retryable error.
      let resolved;
      try {
        resolved = resolve(call.target);
      } catch (error) {
        return { kind: "error", detail: `invalid target: ${(error as Error).message}` };
      }
      const { target, refusal, host } = resolved;
      if (refusal) return { kind: "error", detail: `target refused: ${refusal}` };
      const headers: Record<string, string> = {
        "accord-gid": call.gid,
        "accord-mode": call.mode,
        "accord-branch-id": call.branchId,
        "accord-op": call.op,
        "accord-fence": String(call.fence),
      };
      if (call.traceparent) headers.traceparent = call.traceparent;
      return bulkhead(target.hostKey).run(async (): Promise<BranchOutcome> => {
        // A wait for the slot can outlast the lease (a pause, a slow host): look again now.
        if (call.stillOwned && !(await call.stillOwned())) return { kind: "unsent", detail: "the lease was lost before the call" };
        // With tracing on, the branch joins the trace as a child of this call's span.
        const span = startBranchSpan(call, target.kind, target.hostKey);
        if (span) headers.traceparent = span.traceparent;
        const sent = performance.now();
        const outcome =
          target.kind === "http"
            ? await http.post(target.url, call.payload, headers, call.timeoutMs)
            : await grpc.call(target.tls, target.authority, target.path, call.payload, headers, call.timeoutMs);
        if (outcome.kind !== "unsent") options.metrics?.branchCalled(call.op, outcome.kind, host, (performance.now() - sent) / 1000);
        span?.end(outcome);
        return outcome;
      });
    },
    setMaxCallsPerHost(limit) {
      maxCallsPerHost = limit;
      for (const semaphore of hosts.values()) semaphore.setLimit(limit);
      http.setMaxSocketsPerHost(limit);
    },
    close() {
      http.close();
      grpc.close();
    },
  };
}
