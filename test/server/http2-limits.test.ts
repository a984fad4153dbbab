import { connect as h2connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type SecureClientSessionOptions } from "node:http2";
import { connect as netConnect, type Socket } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode, TransactionStatus, type Transaction } from "../../gen/accord/v1/transaction_pb.js";
import { ConfigError, loadConfig } from "../../server/config.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { TestPki } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";
import { waitUntil } from "../support/wait-until.js";

const MAX_STREAMS = 5;
const IDLE_STREAM_MS = 300;
const NEW_GID = "/accord.v1.CoordinatorService/NewGid";

const backend = sqliteBackend();
const running: RunningCoordinator[] = [];
const sessions: ClientHttp2Session[] = [];
let pki: TestPki;

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await Promise.all(running.map((c) => c.stop()));
  await backend.cleanup();
  await pki?.cleanup();
});

async function coordinator(limits: { maxConcurrentStreams?: number; idleStreamMs?: number }, security = {}): Promise<RunningCoordinator> {
  const started = await startTestCoordinator(await backend.freshUrl(), {
    limits,
    security,
    engine: { preparedTimeoutMs: 3_600_000 },
  });
  running.push(started);
  return started;
}

function session(url: string, options: SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  const s = h2connect(url, options);
  sessions.push(s);
  return new Promise((resolve, reject) => {
    s.once("remoteSettings", () => resolve(s));
    s.once("error", reject);
  });
}

/** A gRPC NewGid request; the tests read how it ends from rstCode, so its errors are expected. */
function grpcRequest(s: ClientHttp2Session, endStream: boolean): ClientHttp2Stream {
  const stream = s.request({ ":method": "POST", ":path": NEW_GID, "content-type": "application/grpc", te: "trailers" }, { endStream });
  stream.on("error", () => {});
  stream.resume();
  return stream;
}

/** A request whose body never comes: the server waits on the client. */
const hangingRequest = (s: ClientHttp2Session) => grpcRequest(s, false);

/** The RST_STREAM code the stream ends with (generous bound: the server's timers may run late). */
const closed = (stream: ClientHttp2Stream) =>
  waitUntil(async () => stream.closed && { rstCode: stream.rstCode }, "the stream to be closed", 20_000).then((c) => c.rstCode);

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
}

const FRAME = { HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7 } as const;

/**
 * An HTTP/2 client written frame by frame, because real client libraries queue requests beyond the
 * server's limit instead of sending them: only a client that ignores the limit shows it is enforced.
 */
class RawH2Client {
  readonly frames: Frame[] = [];
  #buffer = Buffer.alloc(0);
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 9) {
        const length = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + length) break;
        const b = this.#buffer;
        this.frames.push({ type: b[3]!, flags: b[4]!, stream: b.readUInt32BE(5) & 0x7fffffff, payload: b.subarray(9, 9 + length) });
        this.#buffer = b.subarray(9 + length);
      }
    });
    socket.on("close", () => (this.closed = true));
    socket.on("error", () => (this.closed = true));
  }

  static async connect(port: number): Promise<RawH2Client> {
    const socket = netConnect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    const client = new RawH2Client(socket);
    socket.write(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    client.send(FRAME.SETTINGS, 0, 0, Buffer.alloc(0));
    await waitUntil(async () => client.frames.some((f) => f.type === FRAME.SETTINGS && !(f.flags & 1)), "the server's SETTINGS");
    return client;
  }

  send(type: number, flags: number, stream: number, payload: Buffer): void {
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(stream, 5);
    this.socket.write(Buffer.concat([header, payload]));
  }

  /** HEADERS of a gRPC POST without END_STREAM, so the stream stays open waiting for its body. */
  openStreams(ids: number[], authority: string): void {
    // HPACK: :method POST and :scheme http from the static table, the rest as literals.
    const literal = (prefix: number[], value: string) => Buffer.concat([Buffer.from(prefix), Buffer.from([value.length]), Buffer.from(value)]);
    const block = Buffer.concat([
      Buffer.from([0x83, 0x86]),
      literal([0x04], NEW_GID),
      literal([0x01], authority),
      literal([0x0f, 0x10], "application/grpc"),
      literal([0x00, 0x02, ...Buffer.from("te")], "trailers"),
    ]);
    for (const id of ids) this.send(FRAME.HEADERS, 0x4 /* END_HEADERS */, id, block);
  }

  resets(): { stream: number; code: number }[] {
    return this.frames.filter((f) => f.type === FRAME.RST_STREAM).map((f) => ({ stream: f.stream, code: f.payload.readUInt32BE(0) }));
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe("HTTP/2 concurrent-stream limit", () => {
  let c: RunningCoordinator;
  beforeAll(async () => {
    c = await coordinator({ maxConcurrentStreams: MAX_STREAMS });
  });

  it("advertises limits.maxConcurrentStreams in SETTINGS, in cleartext and over TLS", async () => {
    expect((await session(c.url)).remoteSettings.maxConcurrentStreams).toBe(MAX_STREAMS);

    pki = await TestPki.create();
    const ca = await pki.ca("h2-limits-ca");
    const cert = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
    const tls = await coordinator({ maxConcurrentStreams: 9 }, { tlsCertFile: cert.certFile, tlsKeyFile: cert.keyFile });
    expect((await session(tls.url, { ca: ca.cert })).remoteSettings.maxConcurrentStreams).toBe(9);
  });

  it("defaults to 1000 concurrent streams and reads both limits from the environment", async () => {
    expect((await session((await coordinator({})).url)).remoteSettings.maxConcurrentStreams).toBe(1000);
    const config = loadConfig({ argv: [], env: { ACCORD_LIMITS_MAX_CONCURRENT_STREAMS: "64", ACCORD_LIMITS_IDLE_STREAM_MS: "45000" } });
    expect(config.limits).toMatchObject({ maxConcurrentStreams: 64, idleStreamMs: 45_000 });
    expect(() => loadConfig({ argv: [], env: { ACCORD_LIMITS_MAX_CONCURRENT_STREAMS: "0" } })).toThrow(ConfigError);
    expect(() => loadConfig({ argv: ["--limits-idle-stream-ms", "10"], env: {} })).toThrow(/limits\.idleStreamMs/);
  });

  it("refuses streams beyond the limit with REFUSED_STREAM and keeps the others", async () => {
    const raw = await RawH2Client.connect(c.port);
    try {
      const ids = Array.from({ length: MAX_STREAMS + 1 }, (_, i) => 2 * i + 1);
      raw.openStreams(ids, `127.0.0.1:${c.port}`);
      const refused = await waitUntil(async () => raw.resets().find((r) => r.stream === ids.at(-1)), "the stream over the limit to be reset");
      expect(refused.code).toBe(h2.NGHTTP2_REFUSED_STREAM);
      expect(raw.resets().filter((r) => r.stream !== ids.at(-1))).toEqual([]);
      expect(raw.closed).toBe(false);
    } finally {
      raw.destroy();
    }
  });

  it("closes the connection of a client that acknowledged the limit and still exceeds it", async () => {
    const raw = await RawH2Client.connect(c.port);
    try {
      raw.send(FRAME.SETTINGS, 0x1 /* ACK */, 0, Buffer.alloc(0));
      raw.openStreams(
        Array.from({ length: MAX_STREAMS + 1 }, (_, i) => 2 * i + 1),
        `127.0.0.1:${c.port}`,
      );
      await waitUntil(async () => raw.frames.some((f) => f.type === FRAME.GOAWAY), "GOAWAY");
    } finally {
      raw.destroy();
    }
  });

  it("serves every call of a client that has more to send than the limit, once it has the server's SETTINGS", async () => {
    const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: c.url }));
    // Calls sent in the same tick as the connection opens go out before the SETTINGS frame is
    // read, and those over the limit are refused (REFUSED_STREAM: not processed, safe to retry).
    // Once the client knows the limit, its HTTP/2 layer queues what does not fit.
    await client.newGid({});
    const gids = await Promise.all(Array.from({ length: MAX_STREAMS * 4 }, () => client.newGid({})));
    expect(new Set(gids.map((g) => g.gid)).size).toBe(MAX_STREAMS * 4);
  });
});

describe("HTTP/2 idle-stream timeout", () => {
  let c: RunningCoordinator;
  beforeAll(async () => {
    c = await coordinator({ idleStreamMs: IDLE_STREAM_MS });
  });

  it("resets a stream whose request never finishes", async () => {
    const s = await session(c.url);
    const stream = hangingRequest(s);
    expect(await closed(stream)).toBe(h2.NGHTTP2_CANCEL);
    // The connection stays usable: only the idle stream was closed.
    expect(s.closed || s.destroyed).toBe(false);
  });

  it("resets a stream whose response the client does not read", async () => {
    // A zero window: the server can send the response headers but none of its body.
    const s = await session(c.url, { settings: { initialWindowSize: 0 } });
    const stream = grpcRequest(s, false);
    stream.end(Buffer.from([0, 0, 0, 0, 0])); // one empty gRPC message: a complete request
    expect(await closed(stream)).toBe(h2.NGHTTP2_CANCEL);
  });

  it("keeps a WatchTransaction that sees no change for longer than the timeout, and streams its next change", async () => {
    const client = createClient(CoordinatorService, createGrpcTransport({ baseUrl: c.url }));
    const gid = `quiet-watch-${Date.now()}`;
    await client.begin({ gid, mode: Mode.TCC });
    const seen: Transaction[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const update of client.watchTransaction({ gid }, { signal: abort.signal })) seen.push(update.transaction!);
    })();
    try {
      await waitUntil(async () => seen.length > 0, "the watch's first state");
      expect(seen[0]!.status).toBe(TransactionStatus.PREPARED);
      // A stream opened after the watch's last frame; once the idle guard has reset it, the
      // quiet watch has been idle longer than the timeout too.
      const probe = hangingRequest(await session(c.url));
      expect(await closed(probe)).toBe(h2.NGHTTP2_CANCEL);

      await client.abort({ gid, reason: "test over" });
      await watching;
      expect(seen.at(-1)!.status).toBe(TransactionStatus.FAILED);
    } finally {
      abort.abort();
      await watching.catch(() => {});
    }
  });
});
