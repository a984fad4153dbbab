import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import {
  constants as h2constants,
  createSecureServer,
  createServer as createHttp2Server,
  type Http2SecureServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type Http2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { createServer as createNetServer, type Socket } from "node:net";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";

/** The handler shape connectNodeAdapter produces; it serves both HTTP/1.1 and HTTP/2 requests. */
export type RequestHandler = ReturnType<typeof connectNodeAdapter>;

export interface OnePortOptions {
  host: string;
  port: number;
  handler: RequestHandler;
  logger: Logger;
  /** A connection that sends nothing for this long is closed (slowloris guard). */
  idleTimeoutMs?: number;
  /** HTTP/2: streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS); more are refused. */
  maxConcurrentStreams: number;
  /**
   * HTTP/2: a stream with no frame in either direction for this long is reset (RST_STREAM CANCEL)
   * while it waits on the peer — for the rest of its request, or to read its response. A stream
   * whose request is complete and whose response is not stuck is waiting on the coordinator
   * (a quiet WatchTransaction, a Submit with wait) and is kept.
   */
  idleStreamMs: number;
  /** TLS on the port (ALPN picks HTTP/2 or HTTP/1.1); cleartext when absent. */
  tls?: TlsOptions;
}

export interface TlsOptions {
  cert: Buffer;
  key: Buffer;
  /** CA for client certificates. */
  ca?: Buffer;
  mtls: "off" | "optional" | "required";
}

export interface OnePortServer {
  readonly host: string;
  readonly port: number;
  /** Stop accepting, let in-flight calls finish for up to `graceMs`, then close what is left. */
  close(graceMs: number): Promise<void>;
  /** New certificates for new connections (TLS only); open connections keep theirs. */
  reloadTls(material: Pick<TlsOptions, "cert" | "key" | "ca">): void;
}

// Every HTTP/2 connection starts with this preface; no HTTP/1.x method starts with "PRI".
const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * One cleartext port for gRPC (HTTP/2 with prior knowledge), gRPC-Web and Connect (HTTP/1.1 or
 * HTTP/2): each new connection's first bytes decide which server gets the socket.
 */
export function listenOnePort(options: OnePortOptions): Promise<OnePortServer> {
  return options.tls ? listenTls(options, options.tls) : listenCleartext(options);
}

/**
 * TLS on the one port: HTTP/2 and HTTP/1.1 by ALPN, TLS 1.2 minimum (1.3 preferred by
 * negotiation), client certificates per `mtls`. With "required", a client without a certificate
 * signed by the CA cannot finish the handshake.
 */
function listenTls(options: OnePortOptions, tls: TlsOptions): Promise<OnePortServer> {
  const { logger } = options;
  let inFlight = 0;
  const sessions = new Set<Http2Session>();
  const sockets = new Set<import("node:net").Socket>();
  const server = createSecureServer(
    {
      cert: tls.cert,
      key: tls.key,
      ca: tls.ca,
      allowHTTP1: true,
      minVersion: "TLSv1.2",
      requestCert: tls.mtls !== "off",
      rejectUnauthorized: tls.mtls === "required",
      settings: { maxConcurrentStreams: options.maxConcurrentStreams },
    },
    ((req: Http2ServerRequest, res: Http2ServerResponse) => {
      inFlight++;
      res.once("close", () => inFlight--);
      options.handler(req, res);
    }) as never,
  );
  server.setTimeout(0);
  closeIdleStreams(server, options);
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    session.on("error", (error) => logger.debug({ err: error }, "HTTP/2 session error"));
  });
  server.on("secureConnection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // As in cleartext: HTTP/1.1 connections silent this long are cut off; HTTP/2 ones are not.
    if (socket.alpnProtocol !== "h2") socket.setTimeout(options.idleTimeoutMs ?? 60_000, () => socket.destroy());
  });
  server.on("tlsClientError", (error) => logger.debug({ err: error }, "TLS handshake refused"));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      const address = server.address();
      resolve({
        host: options.host,
        port: address && typeof address === "object" ? address.port : options.port,
        reloadTls: (material) => server.setSecureContext({ cert: material.cert, key: material.key, ca: material.ca }),
        close: (graceMs) => drainAndClose({ server, sessions, sockets, inFlight: () => inFlight, graceMs, logger }),
      });
    });
  });
}

function listenCleartext(options: OnePortOptions): Promise<OnePortServer> {
  const { logger } = options;
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  let inFlight = 0;
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();

  const counted: RequestHandler = (req, res) => {
    inFlight++;
    res.once("close", () => inFlight--);
    options.handler(req, res);
  };

  const http1 = createHttpServer(
    {
      headersTimeout: Math.min(10_000, idleTimeoutMs),
      requestTimeout: 120_000,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: Math.min(1000, idleTimeoutMs / 2),
    },
    counted as (req: IncomingMessage, res: ServerResponse) => void,
  );
  // This server never listens itself (it is handed sockets), so start the periodic check that
  // enforces headersTimeout and requestTimeout (the slowloris guard) as listening would.
  http1.emit("listening");
  http1.on("clientError", (error, socket) => {
    logger.debug({ err: error }, "rejected malformed HTTP/1.1 request");
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });

  const http2 = createHttp2Server(
    { maxSessionMemory: 64, settings: { maxConcurrentStreams: options.maxConcurrentStreams } },
    counted as (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  );
  closeIdleStreams(http2, options);
  http2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    session.on("error", (error) => logger.debug({ err: error }, "HTTP/2 session error"));
  });
  http2.on("sessionError", (error) => logger.debug({ err: error }, "HTTP/2 session error"));

  const net = createNetServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", (error) => logger.debug({ err: error }, "connection error"));
    socket.setTimeout(idleTimeoutMs, () => socket.destroy());
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (isH2 && seen.length < H2_PREFACE.length) return; // too short to tell yet
      socket.off("data", onData);
      // Put the sniffed bytes back; both servers read what is buffered before the native handle.
      // HTTP/2 must not be resumed here or the buffered preface would flow past its session.
      socket.pause();
      socket.unshift(seen);
      if (isH2) {
        // HTTP/2 manages its own streams and pings; long Watch streams may be silent.
        socket.setTimeout(0);
        http2.emit("connection", socket);
      } else {
        // HTTP/1.1 keeps the inactivity timeout: a client that stops sending mid-request
        // (slowloris) or idles is cut off, whatever the HTTP server's own timers do.
        http1.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  });

  return new Promise((resolve, reject) => {
    net.once("error", reject);
    net.listen(options.port, options.host, () => {
      net.off("error", reject);
      const address = net.address();
      const port = address && typeof address === "object" ? address.port : options.port;
      resolve({
        host: options.host,
        port,
        reloadTls: () => {
          throw new Error("this port serves cleartext; there are no certificates to reload");
        },
        close: (graceMs) => {
          http1.closeIdleConnections();
          // Stops the timeout checks started above; it never listened, so the callback's
          // "not running" error is expected and ignored.
          http1.close(() => {});
          return drainAndClose({ server: net, sessions, sockets, inFlight: () => inFlight, graceMs, logger });
        },
      });
    });
  });
}

/**
 * Resets HTTP/2 streams that wait on the peer for longer than `idleStreamMs`: a request never
 * finished (headers sent, body never ends) or a response the peer stopped reading. Each one holds
 * memory in the session and a handler, and only the per-connection stream limit bounds them.
 */
function closeIdleStreams(server: Http2Server | Http2SecureServer, options: Pick<OnePortOptions, "idleStreamMs" | "logger">): void {
  const { idleStreamMs, logger } = options;
  server.on("stream", (stream: ServerHttp2Stream, headers) => {
    // Node refreshes this timer on every frame read or written on the stream, and does not fire
    // it while a write is still making progress.
    stream.setTimeout(idleStreamMs, () => {
      if (stream.destroyed || stream.closed) return;
      const requestComplete = stream.state.remoteClose === 1;
      const responseStuck = stream.writableLength > 0;
      // The next frame sent re-arms the timer, so a kept Watch is checked again once it writes.
      if (requestComplete && !responseStuck) return;
      logger.debug(
        { path: headers[":path"], streamId: stream.id, idleStreamMs, requestComplete, responseStuck },
        "HTTP/2 stream idle too long; resetting it",
      );
      stream.close(h2constants.NGHTTP2_CANCEL);
    });
  });
}

/**
 * Graceful stop: no new connections, GOAWAY to HTTP/2 sessions, wait for in-flight calls up to
 * the grace period, then close whatever is left.
 */
async function drainAndClose(state: {
  server: { close(callback: () => void): unknown };
  sessions: Set<Http2Session>;
  sockets: Set<{ destroy(): void }>;
  inFlight: () => number;
  graceMs: number;
  logger: Logger;
}): Promise<void> {
  const closed = new Promise<void>((r) => state.server.close(() => r()));
  for (const session of state.sessions) session.close();
  const deadline = Date.now() + state.graceMs;
  while (state.inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (state.inFlight() > 0) state.logger.warn({ inFlight: state.inFlight() }, "grace period over; closing remaining calls");
  for (const socket of state.sockets) socket.destroy();
  await closed;
}
