import type { Logger } from "pino";
import type { Metrics } from "./metrics.js";

// Served by both listeners (the main port's fallback and the ops listener), over HTTP/1.1 or
// HTTP/2, so only what both kinds of request and response have is used.

interface Request {
  method?: string;
  url?: string;
}

interface Response {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(body: string): unknown;
}

/** GET /metrics, with or without a query string. */
export function isMetricsRequest(req: Request): boolean {
  return req.method === "GET" && (req.url === "/metrics" || (req.url?.startsWith("/metrics?") ?? false));
}

/** Answers with the Prometheus text exposition, or 500 (and a log line) if it could not be made. */
export function serveMetrics(metrics: Metrics, res: Response, logger: Logger): void {
  metrics.render().then(
    (body) => {
      res.writeHead(200, { "content-type": metrics.contentType });
      res.end(body);
    },
    (error: unknown) => {
      logger.error({ err: error }, "rendering /metrics failed");
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("metrics unavailable; the coordinator log has the details\n");
    },
  );
}
