import { createServer, type IncomingMessage, type Server } from "node:http";
import * as grpc from "@grpc/grpc-js";

/** One call as the branch service saw it. */
export interface BranchCallRecord {
  transport: "http" | "grpc";
  /** HTTP path or gRPC method name, e.g. "/debit" or "Debit". */
  name: string;
  gid: string;
  branchId: string;
  op: string;
  mode: string;
  traceparent: string;
  /** The accord-fence header: the lease generation of the coordinator that sent the call. */
  fence: number;
  payload: string;
  at: number;
}

/** What a scripted endpoint answers: an HTTP-like status, optionally after a delay. */
export interface Reply {
  status: number;
  /** Answer only once this settles (e.g. a gate the test opens when it has seen what it needs). */
  until?: Promise<unknown>;
  delayMs?: number;
  body?: string;
}

export type Script = (call: BranchCallRecord, callsSoFar: number) => Reply;

const statusToGrpc = (status: number): grpc.status =>
  status >= 200 && status < 300
    ? grpc.status.OK
    : status === 409
      ? grpc.status.ABORTED
      : status === 425
        ? grpc.status.FAILED_PRECONDITION
        : grpc.status.UNAVAILABLE;

/**
 * A real branch service for tests, over HTTP and gRPC. Every call is recorded; effects go through
 * a barrier like the SDK's: each (gid, branch, op) takes effect at most once, a compensation whose
 * action never took effect does nothing, and an action after its compensation is refused.
 */
export class TestBranchService {
  readonly calls: BranchCallRecord[] = [];
  /** "gid/branch/op" of every effect applied, in order. */
  readonly effects: string[] = [];
  #scripts = new Map<string, Script>();
  #barrier = new Set<string>();
  #http?: Server;
  #grpc?: grpc.Server;
  httpPort = 0;
  grpcPort = 0;

  /** Script the answers of one endpoint ("/path" for HTTP, "Method" for gRPC). */
  on(name: string, script: Script): this {
    this.#scripts.set(name, script);
    return this;
  }

  callsTo(name: string, gid?: string): BranchCallRecord[] {
    return this.calls.filter((c) => c.name === name && (gid === undefined || c.gid === gid));
  }

  effectsOf(gid: string): string[] {
    return this.effects.filter((e) => e.startsWith(`${gid}/`));
  }

  httpUrl(path: string): string {
    return `http://127.0.0.1:${this.httpPort}${path}`;
  }

  grpcUrl(method: string): string {
    return `grpc://127.0.0.1:${this.grpcPort}/test.Branch/${method}`;
  }

  async #handle(call: BranchCallRecord): Promise<Reply> {
    const callsSoFar = this.calls.filter((c) => c.name === call.name && c.gid === call.gid && c.branchId === call.branchId).length;
    this.calls.push(call);
    const script = this.#scripts.get(call.name);
    const reply = script ? script(call, callsSoFar) : { status: 200 };
    if (reply.until) await reply.until;
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    if (reply.status >= 200 && reply.status < 300) this.#applyEffect(call);
    return reply;
  }

  #applyEffect(call: BranchCallRecord): void {
    const key = `${call.gid}/${call.branchId}/${call.op}`;
    if (this.#barrier.has(key)) return; // duplicate call: no second effect
    this.#barrier.add(key);
    const actionKey = `${call.gid}/${call.branchId}/action`;
    const compensateKey = `${call.gid}/${call.branchId}/compensate`;
    if (call.op === "compensate" && !this.effects.includes(actionKey)) return; // null compensation
    if (call.op === "action" && this.#barrier.has(compensateKey)) return; // hanging action refused
    this.effects.push(key);
  }

  async listenHttp(port = 0): Promise<void> {
    const server = createServer((req, res) => {
      readBody(req).then(async (payload) => {
        const reply = await this.#handle({
          transport: "http",
          name: req.url ?? "/",
          gid: String(req.headers["accord-gid"] ?? ""),
          branchId: String(req.headers["accord-branch-id"] ?? ""),
          op: String(req.headers["accord-op"] ?? ""),
          mode: String(req.headers["accord-mode"] ?? ""),
          traceparent: String(req.headers.traceparent ?? ""),
          fence: Number(req.headers["accord-fence"] ?? NaN),
          payload,
          at: Date.now(),
        });
        if (!res.destroyed) res.writeHead(reply.status).end(reply.body ?? "");
      }, (error: unknown) => res.writeHead(500).end(String(error)));
    });
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    const address = server.address();
    this.httpPort = address && typeof address === "object" ? address.port : port;
    this.#http = server;
  }

  async listenGrpc(methods: string[], port = 0): Promise<void> {
    const server = new grpc.Server();
    const definition: grpc.ServiceDefinition = Object.fromEntries(
      methods.map((m) => [
        m,
        {
          path: `/test.Branch/${m}`,
          requestStream: false,
          responseStream: false,
          requestSerialize: (b: Buffer) => b,
          requestDeserialize: (b: Buffer) => b,
          responseSerialize: (b: Buffer) => b,
          responseDeserialize: (b: Buffer) => b,
        },
      ]),
    );
    const handlers = Object.fromEntries(
      methods.map((m) => [
        m,
        (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          const meta = (name: string) => String(call.metadata.get(name)[0] ?? "");
          void this.#handle({
            transport: "grpc",
            name: m,
            gid: meta("accord-gid"),
            branchId: meta("accord-branch-id"),
            op: meta("accord-op"),
            mode: meta("accord-mode"),
            traceparent: meta("traceparent"),
            fence: Number(meta("accord-fence") || NaN),
            payload: call.request.toString("utf8"),
            at: Date.now(),
          }).then((reply) => {
            const code = statusToGrpc(reply.status);
            if (code === grpc.status.OK) callback(null, Buffer.alloc(0));
            else callback({ code, details: reply.body ?? `status ${reply.status}` });
          });
        },
      ]),
    );
    server.addService(definition, handlers);
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
    );
    this.#grpc = server;
  }

  async close(): Promise<void> {
    const http = this.#http;
    this.#http = undefined;
    if (http) {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    }
    this.#grpc?.forceShutdown();
    this.#grpc = undefined;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk: string) => (body += chunk));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}
