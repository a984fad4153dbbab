import { createServer, type Server } from "node:http";
import { SpanKind, trace } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { Mode, TransactionStatus } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { normalizeTraceparent, startBranchSpan, startTracing, tracingOn, type Tracing } from "../../server/observe/tracing.js";
import { TestBranchService } from "../support/branch-service.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { backends, sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
let counter = 0;
const uniqueGid = (name: string) => `${name}-${Date.now()}-${counter++}`;
const hex = (bytes: number) => Array.from({ length: bytes * 2 }, () => "0123456789abcdef"[Math.floor(Math.random() * 16)]).join("");
/** A caller's trace: a traceparent naming a fresh trace id and the caller's span. */
const callerTrace = () => {
  const traceId = hex(16);
  const spanId = hex(8);
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
};
const parts = (traceparent: string) => {
  const [, traceId, spanId] = traceparent.split("-");
  return { traceId, spanId };
};

describe("traceparent validation", () => {
  it("accepts W3C traceparents, reads later versions by their first four fields, and refuses the rest", () => {
    const ok = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    expect(normalizeTraceparent(ok)).toBe(ok);
    expect(normalizeTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra")).toBe(ok);
    for (const bad of [
      "",
      "nope",
      "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
      "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      "00-00000000000000000000000000000000-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
      "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
      "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
    ]) {
      expect(normalizeTraceparent(bad), bad).toBeUndefined();
    }
  });
});

for (const backend of backends()) {
  describe(`trace context without a tracer (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let client: Client<typeof CoordinatorService>;
    const svc = new TestBranchService();

    beforeAll(async () => {
      await svc.listenHttp();
      await svc.listenGrpc(["Debit"]);
      coordinator = await startTestCoordinator(await backend.freshUrl());
      client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    });
    afterAll(async () => {
      await coordinator.stop();
      await svc.close();
      await backend.cleanup();
    });

    const submit = (gid: string, options: { traceparent?: string } = {}, headers: Record<string, string> = {}) =>
      client.submit(
        { gid, mode: Mode.SAGA, wait: true, options, steps: [{ action: svc.httpUrl("/a"), compensate: svc.httpUrl("/a-undo"), payload: json({}) }, { action: svc.grpcUrl("Debit"), compensate: svc.grpcUrl("Debit"), payload: json({}) }] },
        { headers },
      );
    const received = (gid: string) => svc.calls.filter((c) => c.gid === gid).map((c) => c.traceparent);

    it("is off: the API's tracer records nothing, and no span helper makes a span", () => {
      expect(tracingOn()).toBe(false);
      const span = trace.getTracer("accord").startSpan("probe");
      expect(span.isRecording()).toBe(false);
      span.end();
      expect(startBranchSpan({ gid: "g", mode: "saga", branchId: "01", op: "action", fence: 1, traceparent: "" }, "http", "http://127.0.0.1:1")).toBeUndefined();
    });

    it("sends the traceparent given in options to every branch, over HTTP and gRPC", async () => {
      const gid = uniqueGid("options");
      const { traceparent } = callerTrace();
      expect((await submit(gid, { traceparent })).transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(received(gid)).toEqual([traceparent, traceparent]);
    });

    it("stores the request's traceparent header when the options have none, and sends it to every branch", async () => {
      const gid = uniqueGid("header");
      const { traceparent } = callerTrace();
      const { transaction } = await submit(gid, {}, { traceparent });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(transaction?.options?.traceparent).toBe(traceparent);
      expect((await coordinator.store.getTransaction(gid))?.transaction.traceparent).toBe(traceparent);
      expect(received(gid)).toEqual([traceparent, traceparent]);
    });

    it("prefers the options' traceparent to the header, and ignores an invalid header", async () => {
      const given = callerTrace().traceparent;
      const both = uniqueGid("both");
      await submit(both, { traceparent: given }, { traceparent: callerTrace().traceparent });
      expect(received(both)).toEqual([given, given]);
      const invalid = uniqueGid("invalid");
      const { transaction } = await submit(invalid, {}, { traceparent: "00-not-a-trace-01" });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      expect(received(invalid)).toEqual(["", ""]);
    });

    it("keeps a retry with another traceparent header the same request", async () => {
      const gid = uniqueGid("retry");
      const first = callerTrace().traceparent;
      const request = { gid, mode: Mode.SAGA, wait: true, requestId: `rid-${gid}`, steps: [{ action: svc.httpUrl("/a"), compensate: svc.httpUrl("/a-undo"), payload: json({}) }] };
      await client.submit(request, { headers: { traceparent: first } });
      const again = await client.submit(request, { headers: { traceparent: callerTrace().traceparent } });
      expect(again.transaction).toMatchObject({ gid, status: TransactionStatus.SUCCEEDED });
      expect(again.transaction?.options?.traceparent).toBe(first);
    });
  });
}

for (const backend of backends()) {
  describe(`spans with an in-memory exporter (${backend.name})`, () => {
    let coordinator: RunningCoordinator;
    let client: Client<typeof CoordinatorService>;
    let tracing: Tracing;
    const exporter = new InMemorySpanExporter();
    const svc = new TestBranchService();

    beforeAll(async () => {
      await svc.listenHttp();
      await svc.listenGrpc(["Credit"]);
      tracing = await startTracing({ serviceName: "accord-test", exporter }, pino({ level: "silent" }));
      coordinator = await startTestCoordinator(await backend.freshUrl());
      client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
    });
    afterAll(async () => {
      await coordinator.stop();
      await tracing.shutdown();
      await svc.close();
      await backend.cleanup();
    });

    const steps = () => [
      { action: svc.httpUrl("/debit"), compensate: svc.httpUrl("/debit-undo"), payload: json({}) },
      { action: svc.grpcUrl("Credit"), compensate: svc.grpcUrl("Credit"), payload: json({}) },
    ];
    const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

    /** The spans of one traced Submit: the RPC's, each branch call's, the store writes'. */
    const expectJoinedTrace = async (gid: string, caller: ReturnType<typeof callerTrace>) => {
      // The branches were called with the traceparent of their call's span: same trace, new parent.
      const calls = svc.calls.filter((c) => c.gid === gid);
      expect(calls.map((c) => `${c.name} ${c.op}`)).toEqual(["/debit action", "Credit action"]);
      for (const call of calls) {
        expect(parts(call.traceparent).traceId).toBe(caller.traceId);
        expect(parts(call.traceparent).spanId).not.toBe(caller.spanId);
      }
      const spans = await waitUntil(
        async () => {
          const found = spansOf(caller.traceId);
          // The RPC, two branch calls, the create and the finish.
          return found.filter((s) => s.name === "store.write").length >= 2 && found.some((s) => s.kind === SpanKind.SERVER) ? found : undefined;
        },
        () => `the spans of ${gid} (so far: ${spansOf(caller.traceId).map((s) => s.name).join(", ")})`,
      );
      const rpc = spans.find((s) => s.name === "accord.v1.CoordinatorService/Submit")!;
      expect(rpc.kind).toBe(SpanKind.SERVER);
      expect(parentOf(rpc)).toBe(caller.spanId);

      const branchSpans = spans.filter((s) => s.name === "branch action");
      expect(branchSpans).toHaveLength(2);
      for (const span of branchSpans) {
        expect(span.kind).toBe(SpanKind.CLIENT);
        // Parented to the transaction's stored traceparent, which names the caller's span.
        expect(parentOf(span)).toBe(caller.spanId);
        expect(span.attributes).toMatchObject({ "accord.gid": gid, "accord.op": "action", "accord.outcome": "success" });
      }
      // Each branch received its own call span's id as the parent.
      expect(branchSpans.map((s) => s.spanContext().spanId).sort()).toEqual(calls.map((c) => parts(c.traceparent).spanId).sort());

      const writes = spans.filter((s) => s.name === "store.write");
      // The create, inside the RPC; the finish, inside the run, which belongs to the transaction's trace.
      expect(writes.find((w) => parentOf(w) === rpc.spanContext().spanId)?.attributes["accord.store.ops"]).toBe("create");
      expect(writes.some((w) => parentOf(w) === caller.spanId)).toBe(true);
      for (const write of writes) {
        expect(write.attributes["db.system.name"]).toBe(backend.name);
        expect(write.attributes["accord.store.group_units"]).toBeGreaterThanOrEqual(1);
      }
    };

    it("joins the caller's trace given as a traceparent header: RPC, branch calls and store writes", async () => {
      const gid = uniqueGid("span-header");
      const caller = callerTrace();
      const { transaction } = await client.submit({ gid, mode: Mode.SAGA, wait: true, steps: steps() }, { headers: { traceparent: caller.traceparent } });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      await expectJoinedTrace(gid, caller);
    });

    it("joins the caller's trace given only in options.traceparent", async () => {
      const gid = uniqueGid("span-options");
      const caller = callerTrace();
      const { transaction } = await client.submit({ gid, mode: Mode.SAGA, wait: true, steps: steps(), options: { traceparent: caller.traceparent } });
      expect(transaction?.status).toBe(TransactionStatus.SUCCEEDED);
      await expectJoinedTrace(gid, caller);
    });

    it("records an RPC's error code on its span", async () => {
      const caller = callerTrace();
      await expect(client.getTransaction({ gid: uniqueGid("missing") }, { headers: { traceparent: caller.traceparent } })).rejects.toThrow(/not found/);
      const rpc = await waitUntil(async () => spansOf(caller.traceId).find((s) => s.name === "accord.v1.CoordinatorService/GetTransaction"), "the GetTransaction span");
      expect(rpc.attributes["rpc.connect_rpc.error_code"]).toBe("not_found");
      expect(parentOf(rpc)).toBe(caller.spanId);
    });

    it("makes no span for health checks", async () => {
      const caller = callerTrace();
      const health = createClient(Health, createGrpcTransport({ baseUrl: coordinator.url }));
      await health.check({}, { headers: { traceparent: caller.traceparent } });
      // A traced call after it: once its span is out, the health check's would be too.
      await client.getTransaction({ gid: uniqueGid("after") }, { headers: { traceparent: caller.traceparent } }).catch(() => undefined);
      await waitUntil(async () => spansOf(caller.traceId).some((s) => s.name.endsWith("/GetTransaction")), "the GetTransaction span");
      expect(spansOf(caller.traceId).map((s) => s.name)).toEqual(["accord.v1.CoordinatorService/GetTransaction"]);
    });
  });
}

describe("OTLP export configured by tracing.otlpEndpoint", () => {
  const backend = sqliteBackend();
  const svc = new TestBranchService();
  const bodies: Buffer[] = [];
  let collector: Server;
  let collectorUrl: string;

  beforeAll(async () => {
    await svc.listenHttp();
    collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        if (req.url === "/v1/traces") bodies.push(Buffer.concat(chunks));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, "127.0.0.1", resolve));
    const address = collector.address();
    collectorUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}/v1/traces`;
  });
  afterAll(async () => {
    collector.closeAllConnections();
    await new Promise((r) => collector.close(r));
    await svc.close();
    await backend.cleanup();
  });

  it("sends the coordinator's spans to the collector, and turns tracing off again when it stops", async () => {
    const coordinator = await startTestCoordinator(await backend.freshUrl(), { tracing: { otlpEndpoint: collectorUrl } });
    const caller = callerTrace();
    try {
      expect(tracingOn()).toBe(true);
      const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: coordinator.url }));
      const gid = uniqueGid("otlp");
      await client.submit({ gid, mode: Mode.SAGA, wait: true, steps: [{ action: svc.httpUrl("/x"), compensate: svc.httpUrl("/x-undo"), payload: json({}) }] }, { headers: { traceparent: caller.traceparent } });
    } finally {
      // Stopping exports what is pending.
      await coordinator.stop();
    }
    expect(tracingOn()).toBe(false);
    // JSON carries the trace id as hex, protobuf as its 16 bytes.
    await waitUntil(
      async () => bodies.some((body) => body.includes(caller.traceId) || body.includes(Buffer.from(caller.traceId, "hex"))),
      () => `the collector to receive trace ${caller.traceId} (${bodies.length} exports so far)`,
    );
  });
});
