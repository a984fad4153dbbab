import http from "node:http";
import https from "node:https";
import type { Client as GrpcClient } from "@grpc/grpc-js";

/**
 * Calls branch targets the way the coordinator does (docs/architecture.md, "The branch
 * contract"). The SDK must not import server/, so this is a small copy of the coordinator's
 * invoker: same URL schemes, same headers, same reading of the status.
 */

/** What the coordinator makes of an answer. */
export type Outcome = "success" | "failure" | "ongoing" | "error";

export interface Answer {
  /** As shown in a report: "HTTP 200", "gRPC 10 ABORTED", "no answer: ECONNREFUSED". */
  text: string;
  outcome: Outcome;
  /**
   * False for a status the contract gives no meaning (an HTTP 404, a gRPC UNIMPLEMENTED…): the
   * coordinator reads it as an error and retries it for ever, though it will never change.
   */
  inContract: boolean;
  /** The start of an error body or gRPC message, for the report. */
  detail: string;
}

export interface ConformanceTls {
  /** CA certificate(s) for https:// and grpcs:// targets (else the system's). */
  ca?: string | Buffer;
  /** Client certificate and key, for services that require mTLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

type Target = { kind: "http"; url: URL } | { kind: "grpc"; tls: boolean; authority: string; path: string };

/** Options the kit cannot work with (a missing or malformed target): the caller's mistake, not the service's. */
export class ConformanceOptionsError extends TypeError {
  override name = "ConformanceOptionsError";
}

const GRPC_PATH = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

/** The same target forms the coordinator accepts; throws ConformanceOptionsError naming what is wrong. */
export function parseBranchTarget(raw: string, name: string): Target {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConformanceOptionsError(`${name}: "${raw}" is not a URL (expected http(s)://host:port/path or grpc(s)://host:port/pkg.Service/Method)`);
  }
  switch (url.protocol) {
    case "http:":
    case "https:":
      return { kind: "http", url };
    case "grpc:":
    case "grpcs:": {
      if (!GRPC_PATH.test(url.pathname) || url.search || url.hash) throw new ConformanceOptionsError(`${name}: "${raw}" must name a method as grpc(s)://host:port/pkg.Service/Method`);
      const port = url.port || (url.protocol === "grpcs:" ? "443" : "80");
      return { kind: "grpc", tls: url.protocol === "grpcs:", authority: `${url.hostname}:${port}`, path: url.pathname };
    }
    default:
      throw new ConformanceOptionsError(`${name}: "${raw}" has unsupported scheme "${url.protocol.replace(/:$/, "")}" (use http, https, grpc or grpcs)`);
  }
}

const DETAIL_CHARS = 300;

export function answerOfHttpStatus(status: number, body: string): Answer {
  const detail = body.trim().slice(0, DETAIL_CHARS);
  const text = `HTTP ${status}`;
  if (status >= 200 && status < 300) return { text, outcome: "success", inContract: true, detail };
  if (status === 409) return { text, outcome: "failure", inContract: true, detail };
  if (status === 425) return { text, outcome: "ongoing", inContract: true, detail };
  return { text, outcome: "error", inContract: status >= 500 && status < 600, detail };
}

const GRPC_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/**
 * The gRPC codes that mean "something went wrong, try again" — the analogue of HTTP 5xx. The
 * others (NOT_FOUND, UNIMPLEMENTED, ALREADY_EXISTS…) are the analogue of a 4xx: retrying cannot
 * change them, yet the coordinator does, for ever.
 */
const GRPC_RETRYABLE = new Set([2, 4, 8, 13, 14, 15]);

export function answerOfGrpcStatus(code: number, message: string): Answer {
  const detail = message.trim().slice(0, DETAIL_CHARS);
  const text = `gRPC ${code} ${GRPC_NAMES[code] ?? "?"}`;
  if (code === 0) return { text, outcome: "success", inContract: true, detail };
  if (code === 10) return { text, outcome: "failure", inContract: true, detail };
  if (code === 9) return { text, outcome: "ongoing", inContract: true, detail };
  return { text, outcome: "error", inContract: GRPC_RETRYABLE.has(code), detail };
}

/** No status at all (refused, reset, timed out): an error the coordinator retries, in contract. */
const noAnswer = (why: string): Answer => ({ text: `no answer: ${why}`, outcome: "error", inContract: true, detail: "" });

export interface CallHeaders {
  gid: string;
  mode: string;
  branchId: string;
  op: string;
  /** Absent on a TCC try, which the application calls, not the coordinator. */
  fence?: number;
  traceparent?: string;
}

export interface Caller {
  /** POSTs (or calls over gRPC) `payload` to `target` with the accord-* headers. */
  call(target: string, payload: Uint8Array, headers: CallHeaders): Promise<Answer>;
  /** A plain HTTP request outside the branch contract (the probe, the MSG local transaction). */
  request(method: "GET" | "POST", url: string, body: Uint8Array | undefined, headers: Record<string, string>): Promise<{ status: number; body: string } | { error: string }>;
  close(): void;
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export function createCaller(options: { timeoutMs: number; tls?: ConformanceTls }): Caller {
  const { timeoutMs, tls } = options;
  const agents = {
    http: new http.Agent({ keepAlive: true }),
    https: new https.Agent({ keepAlive: true, ca: tls?.ca, cert: tls?.cert, key: tls?.key, minVersion: "TLSv1.2" }),
  };
  const grpcClients = new Map<string, GrpcClient>();

  const request: Caller["request"] = (method, raw, body, headers) => {
    const url = new URL(raw);
    const secure = url.protocol === "https:";
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: { status: number; body: string } | { error: string }) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = (secure ? https : http).request(url, {
        method,
        agent: secure ? agents.https : agents.http,
        headers: body ? { ...headers, "content-length": String(body.byteLength) } : headers,
      });
      const timer = setTimeout(() => {
        settle({ error: `timed out after ${timeoutMs}ms` });
        req.destroy();
      }, timeoutMs);
      req.on("error", (error: NodeJS.ErrnoException) => settle({ error: error.code ?? error.message }));
      req.on("response", (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          // Probe answers are small JSON; an error page is only shown in part.
          if (text.length < 64 * 1024) text += chunk;
        });
        response.on("end", () => settle({ status: response.statusCode ?? 0, body: text }));
        response.on("error", (error) => settle({ error: error.message }));
      });
      req.end(body);
    });
  };

  const grpcCall = async (target: Extract<Target, { kind: "grpc" }>, payload: Uint8Array, headers: Record<string, string>): Promise<Answer> => {
    // Loaded on first use: services with HTTP branches only never load a gRPC stack.
    const grpc = await import("@grpc/grpc-js");
    const key = `${target.tls ? "s" : "p"}|${target.authority}`;
    let client = grpcClients.get(key);
    if (!client) {
      const toBuf = (v: string | Buffer | undefined) => (v === undefined ? null : Buffer.from(v));
      const credentials = target.tls ? grpc.credentials.createSsl(toBuf(tls?.ca), toBuf(tls?.key), toBuf(tls?.cert)) : grpc.credentials.createInsecure();
      client = new grpc.Client(target.authority, credentials);
      grpcClients.set(key, client);
    }
    const metadata = new grpc.Metadata();
    for (const [name, value] of Object.entries(headers)) metadata.set(name, value);
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        target.path,
        toBuffer,
        () => undefined,
        payload,
        metadata,
        { deadline: Date.now() + timeoutMs },
        (error) => resolve(error ? answerOfGrpcStatus(error.code, error.details) : answerOfGrpcStatus(0, "")),
      );
    });
  };

  return {
    async call(raw, payload, h) {
      const target = parseBranchTarget(raw, "target");
      const headers: Record<string, string> = { "accord-gid": h.gid, "accord-mode": h.mode, "accord-branch-id": h.branchId, "accord-op": h.op };
      if (h.fence !== undefined) headers["accord-fence"] = String(h.fence);
      if (h.traceparent) headers.traceparent = h.traceparent;
      if (target.kind === "grpc") return grpcCall(target, payload, headers);
      const result = await request("POST", target.url.href, payload, { ...headers, "content-type": "application/json" });
      return "error" in result ? noAnswer(result.error) : answerOfHttpStatus(result.status, result.body);
    },
    request,
    close() {
      agents.http.destroy();
      agents.https.destroy();
      for (const client of grpcClients.values()) client.close();
      grpcClients.clear();
    },
  };
}
