import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { Logger } from "pino";

export interface OpsServerOptions {
  host: string;
  port: number;
  /** Serves the ops endpoints and answers 404 to everything else; never an RPC handler. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  logger: Logger;
}

export interface OpsServer {
  /** Base URL, e.g. http://127.0.0.1:7461 */
  readonly url: string;
  readonly port: number;
  /** Stops accepting and closes open connections; probes simply reconnect elsewhere. */
  close(): Promise<void>;
}

/**
 * The plain-HTTP ops listener (GET /healthz, GET /metrics). It carries no TLS, so a Kubernetes
 * probe or a Prometheus scrape reaches it when the RPC port requires client certificates; it
 * therefore serves only what `handler` serves, and short requests only.
 */
export function listenOps(options: OpsServerOptions): Promise<OpsServer> {
  const { logger } = options;
  const server = createServer({ headersTimeout: 5_000, requestTimeout: 10_000, keepAliveTimeout: 5_000 }, options.handler);
  server.on("clientError", (error, socket) => {
    logger.debug({ err: error }, "ops listener: rejected malformed request");
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      server.on("error", (error) => logger.error({ err: error }, "ops listener error"));
      const address = server.address();
      const port = address && typeof address === "object" ? address.port : options.port;
      resolve({
        url: `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`,
        port,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((error) => (error ? fail(error) : done()));
            server.closeAllConnections();
          }),
      });
    });
  });
}
