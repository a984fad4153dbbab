import {
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchSpanProcessor, SimpleSpanProcessor, TracerProvider, type SpanExporter } from "@opentelemetry/sdk-trace";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { wrapStreamMessages } from "../transport/stream-response.js";

// The coordinator's OpenTelemetry spans (README, "Tracing"). Off unless startTracing
// ran: then every helper here returns at its first line, before touching the API, so a coordinator
// without tracing allocates nothing for it on the hot path — not even the API's no-op spans.
//
//   - one SERVER span per RPC (createTracingInterceptor), child of the caller's `traceparent`
//     header, or of a Submit's or Begin's `options.traceparent` when there is no header;
//   - one CLIENT span per branch call (startBranchSpan), child of the transaction's stored
//     traceparent; the call carries this span's traceparent, so the branch joins as its child;
//   - one span per unit of store writes (traceStoreWrite), child of whatever is being traced (the
//     RPC, or the run of a transaction with a traceparent). Group commit serves many units with one
//     database commit; each unit's span covers its wait for the group and the commit, and says how
//     many units shared it (`accord.store.group_units`). Writes outside any trace make no span.

const propagator = new W3CTraceContextPropagator();
const W3C_TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * A W3C `traceparent` as this coordinator stores and sends it (version 00), or undefined when
 * the value is not one: wrong shape, version ff, an all-zero trace or parent id, or a version 00
 * with more fields. A later version is read by its first four fields, as the spec asks.
 */
export function normalizeTraceparent(value: string): string | undefined {
  const m = W3C_TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === "ff" || (version === "00" && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return undefined;
  return `00-${traceId}-${parentId}-${flags}`;
}

interface Active {
  tracer: Tracer;
  provider: TracerProvider;
  /** Spans of units of writes waiting for their group, to say how many units shared its commit. */
  unitSpans: WeakMap<object, Span>;
}

let active: Active | undefined;

/** True while a tracer is configured; every span helper checks it first. */
export function tracingOn(): boolean {
  return active !== undefined;
}

export interface TracingOptions {
  /** service.name of the spans. */
  serviceName: string;
  /** service.instance.id: this coordinator. */
  instanceId?: string;
  /** Where spans go: an exporter given in code (tests: an InMemorySpanExporter, exported span by span)… */
  exporter?: SpanExporter;
  /** …or OTLP over HTTP to this URL (e.g. http://127.0.0.1:4318/v1/traces), in batches. */
  otlpEndpoint?: string;
}

export interface Tracing {
  /** Exports what is pending and turns tracing off. */
  shutdown(): Promise<void>;
}

/**
 * Turns tracing on for this process (one tracer at a time): a tracer provider of its own (the
 * global one is left alone), and the async-hooks context manager, so a span started around a
 * request is the parent of the store writes made while serving it.
 */
export async function startTracing(options: TracingOptions, logger: Logger): Promise<Tracing> {
  if (active) throw new Error("tracing is already on in this process");
  let processor;
  if (options.exporter) {
    processor = new SimpleSpanProcessor({ exporter: options.exporter });
  } else if (options.otlpEndpoint) {
    // Loaded only when configured: a coordinator without tracing never loads the exporter.
    const { OTLPTraceExporter } = await import("@opentelemetry/exporter-trace-otlp-http");
    processor = new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: options.otlpEndpoint }) });
  } else {
    throw new Error("startTracing needs an exporter or an OTLP endpoint");
  }
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      "service.name": options.serviceName,
      ...(options.instanceId ? { "service.instance.id": options.instanceId } : {}),
    }),
    spanProcessors: [processor],
  });
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) {
    manager.disable();
    throw new Error("another OpenTelemetry context manager is registered in this process");
  }
  const mine: Active = { tracer: provider.getTracer("accord"), provider, unitSpans: new WeakMap() };
  active = mine;
  logger.info({ otlpEndpoint: options.otlpEndpoint || undefined, serviceName: options.serviceName }, "tracing on");
  return {
    async shutdown() {
      if (active !== mine) return;
      active = undefined;
      context.disable();
      await provider.shutdown();
    },
  };
}

const recordGetter: TextMapGetter<Record<string, string>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

const headersGetter: TextMapGetter<Headers> = {
  get: (headers, key) => headers.get(key) ?? undefined,
  keys: (headers) => [...headers.keys()],
};

/** The remote parent a traceparent names, or undefined when it names none (empty or invalid). */
function parentOf(traceparent: string): Context | undefined {
  if (!traceparent) return undefined;
  const extracted = propagator.extract(ROOT_CONTEXT, { traceparent }, recordGetter);
  return trace.getSpanContext(extracted) ? extracted : undefined;
}

/** The traceparent a call made inside `span` carries. */
function traceparentOf(span: Span): string {
  const carrier: Record<string, string> = {};
  propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, { set: (c, key, value) => (c[key] = value) });
  return carrier.traceparent ?? "";
}

/** Connect's name of a code, as rpc.connect_rpc.error_code has it ("invalid_argument"). */
const codeName = (code: Code) => Code[code].replace(/[a-z](?=[A-Z])/g, "$&_").toLowerCase();

/** Probes and tooling: a span per health check would bury the traces that matter. */
const UNTRACED_SERVICES = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);

/** One SERVER span per RPC; outermost, so it sees the code the caller gets. */
export function createTracingInterceptor(): Interceptor {
  return (next) => async (request) => {
    const on = active;
    if (!on || UNTRACED_SERVICES.has(request.service.typeName)) return next(request);
    let parent = propagator.extract(ROOT_CONTEXT, request.header, headersGetter);
    if (!trace.getSpanContext(parent) && !request.stream) {
      // Submit and Begin may carry the caller's trace in their options instead.
      const fromOptions = (request.message as { options?: { traceparent?: unknown } }).options?.traceparent;
      if (typeof fromOptions === "string") parent = parentOf(fromOptions) ?? parent;
    }
    const span = on.tracer.startSpan(
      `${request.service.typeName}/${request.method.name}`,
      { kind: SpanKind.SERVER, attributes: { "rpc.system": "connect_rpc", "rpc.service": request.service.typeName, "rpc.method": request.method.name } },
      parent,
    );
    const mark = (error: unknown) => {
      const connectError = ConnectError.from(error);
      span.setAttribute("rpc.connect_rpc.error_code", codeName(connectError.code));
      span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
      return error;
    };
    const fail = (error: unknown) => {
      mark(error);
      span.end();
      return error;
    };
    let response;
    try {
      response = await context.with(trace.setSpan(parent, span), () => next(request));
    } catch (error) {
      throw fail(error);
    }
    if (!response.stream) {
      span.end();
      return response;
    }
    return wrapStreamMessages(response, mark, () => span.end());
  };
}

/** What a branch span needs to know of a call. */
export interface BranchSpanCall {
  gid: string;
  mode: string;
  branchId: string;
  op: string;
  fence: number;
  /** The transaction's stored traceparent ("" when it has none). */
  traceparent: string;
}

export interface BranchSpan {
  /** What the call carries as `traceparent`: this span's, so the branch joins as its child. */
  traceparent: string;
  end(outcome: { kind: string; detail?: string }): void;
}

/**
 * A CLIENT span for one branch call, child of the transaction's traceparent (else of what is
 * being traced, if anything); undefined when tracing is off.
 */
export function startBranchSpan(call: BranchSpanCall, transport: "http" | "grpc", hostKey: string): BranchSpan | undefined {
  const on = active;
  if (!on) return undefined;
  const parent = parentOf(call.traceparent) ?? context.active();
  const span = on.tracer.startSpan(
    `branch ${call.op}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        "accord.gid": call.gid,
        "accord.mode": call.mode,
        "accord.branch_id": call.branchId,
        "accord.op": call.op,
        "accord.fence": call.fence,
        "accord.transport": transport,
        // scheme://host:port only: a target's path or query may carry what a trace should not.
        "accord.target_host": hostKey,
      },
    },
    parent,
  );
  return {
    traceparent: traceparentOf(span),
    end(outcome) {
      span.setAttribute("accord.outcome", outcome.kind);
      // FAILURE and ONGOING are answers the contract defines; only an error is the call failing.
      if (outcome.kind === "error") span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.detail });
      span.end();
    },
  };
}

/**
 * Runs `fn` as part of the trace `traceparent` names, so the store writes it makes join that
 * trace; without tracing, or without a valid traceparent, just runs it.
 */
export function inTransactionTrace<T>(traceparent: string | undefined, fn: () => T): T {
  if (!active || !traceparent) return fn();
  const parent = parentOf(traceparent);
  return parent ? context.with(parent, fn) : fn();
}

/**
 * A span around one unit of store writes, child of what is being traced; `write` runs bare when
 * nothing is (or tracing is off). Call only when tracingOn(): the caller then builds no closure
 * when it is off.
 */
export async function traceStoreWrite<T>(store: string, unit: readonly { kind: string }[], write: () => Promise<T>): Promise<T> {
  const on = active;
  const parent = context.active();
  if (!on || !trace.getSpanContext(parent)) return write();
  const span = on.tracer.startSpan(
    "store.write",
    { kind: SpanKind.CLIENT, attributes: { "db.system.name": store, "accord.store.ops": unit.map((op) => op.kind).join(",") } },
    parent,
  );
  on.unitSpans.set(unit, span);
  try {
    return await write();
  } catch (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    throw error;
  } finally {
    on.unitSpans.delete(unit);
    span.end();
  }
}

/** Group commit is about to commit `units` together: their spans say how many shared it. */
export function noteStoreGroup(units: readonly object[]): void {
  const on = active;
  if (!on) return;
  for (const unit of units) on.unitSpans.get(unit)?.setAttribute("accord.store.group_units", units.length);
}
