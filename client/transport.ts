import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { Transport } from "@connectrpc/connect";
import type { AccordClientOptions } from "./client-options.js";
import { tlsRefusalInterceptor } from "./tls-errors.js";

/** One Connect transport per coordinator address, over HTTP/2, with TLS when configured. */
export function createTransport(baseUrl: string, options: AccordClientOptions): Transport {
  const tls = options.tls;
  const nodeOptions = tls
    ? { ca: tls.ca, cert: tls.cert, key: tls.key, servername: tls.serverName, minVersion: "TLSv1.2" as const }
    : undefined;
  const interceptors = [tlsRefusalInterceptor({ address: baseUrl, hasCertificate: Boolean(tls?.cert) })];
  const common = { baseUrl, httpVersion: "2" as const, nodeOptions, interceptors };
  return options.protocol === "connect" ? createConnectTransport({ ...common, useBinaryFormat: true }) : createGrpcTransport(common);
}
