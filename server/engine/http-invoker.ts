import http from "node:http";
import https from "node:https";
import { outcomeOfHttpStatus, type BranchOutcome } from "./outcome.js";

/** How much of an error response body is kept as the branch's last_error. */
const DETAIL_BYTES = 512;

export interface HttpInvoker {
  post(url: URL, payload: Uint8Array, headers: Record<string, string>, timeoutMs: number): Promise<BranchOutcome>;
  /** Changes the pools' size (a reloaded engine.maxCallsPerHost); open sockets are kept. */
  setMaxSocketsPerHost(max: number): void;
  close(): void;
}

/** POSTs over keep-alive connection pools (one per host, at most `maxSocketsPerHost` sockets). */
export function createHttpInvoker(options: { maxSocketsPerHost: number; tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } }): HttpInvoker {
  const agentOptions = { keepAlive: true, maxSockets: options.maxSocketsPerHost, maxFreeSockets: options.maxSocketsPerHost };
  const agents = {
    http: new http.Agent(agentOptions),
    // Branch certificates are verified (against the configured CA, else the system's), and the
    // coordinator presents its own certificate to branches that require mTLS.
    https: new https.Agent({ ...agentOptions, ca: options.tls?.ca, cert: options.tls?.cert, key: options.tls?.key, minVersion: "TLSv1.2" }),
  };

  return {
    post(url, payload, headers, timeoutMs) {
      const secure = url.protocol === "https:";
      return new Promise((resolve) => {
        let settled = false;
        const settle = (outcome: BranchOutcome) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve(outcome);
        };
        const request = (secure ? https : http).request(url, {
          method: "POST",
          agent: secure ? agents.https : agents.http,
          headers: {
            ...headers,
            "content-type": "application/json",
            "content-length": String(payload.byteLength),
          },
        });
        const timer = setTimeout(() => {
          settle({ kind: "error", detail: `timed out after ${timeoutMs}ms` });
          request.destroy();
        }, timeoutMs);
        request.on("error", (error: NodeJS.ErrnoException) => settle({ kind: "error", detail: error.code ?? error.message }));
        request.on("response", (response) => {
          const status = response.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            // Success is read from the status alone: drain the body without decoding it.
            response.resume();
            response.on("end", () => settle({ kind: "success" }));
          } else {
            let body = "";
            response.setEncoding("utf8");
            response.on("data", (chunk: string) => {
              if (body.length < DETAIL_BYTES) body += chunk;
            });
            response.on("end", () => settle(outcomeOfHttpStatus(status, body.slice(0, DETAIL_BYTES).trim())));
          }
          response.on("error", (error) => settle({ kind: "error", detail: error.message }));
        });
        request.end(payload);
      });
    },
    setMaxSocketsPerHost(max) {
      // Agents read these on every request, so the next request queues against the new size.
      for (const agent of [agents.http, agents.https]) {
        agent.maxSockets = max;
        agent.maxFreeSockets = max;
      }
    },
    close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
