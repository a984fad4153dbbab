import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { createErrorInterceptor } from "./api/error-interceptor.js";
import { createRoutes } from "./api/routes.js";
import { redactedConfig, type AccordConfig } from "./config.js";
import { startRegistration, type RegistrationState } from "./cluster/etcd-registration.js";
import { createCommands } from "./engine/commands/index.js";
import { createEngine, type Engine } from "./engine/engine.js";
import { createBranchInvoker } from "./engine/branch-invoker.js";
import { createAuthorizationInterceptor, createAuthorizationPolicy } from "./security/authorization.js";
import { callerIdentity, identityOf } from "./security/identity.js";
import { createTargetPolicy, infrastructureAddresses } from "./security/target-policy.js";
import { loadServerTls, watchServerTls } from "./security/tls-files.js";
import { ACCORD_VERSION } from "./version.js";
import { createStoreHealth } from "./observe/store-health.js";
import { openStore, type Store } from "./store/index.js";
import { listenOnePort, type OnePortServer, type RequestHandler } from "./transport/one-port-server.js";
import { listenOps, type OpsServer } from "./transport/ops-server.js";

export interface RunningCoordinator {
  /** Base URL, e.g. http://127.0.0.1:7460 */
  readonly url: string;
  readonly port: number;
  /** Base URL of the plain-HTTP ops listener (GET /healthz), when `ops.port` is set. */
  readonly opsUrl: string | undefined;
  readonly store: Store;
  readonly engine: Engine;
  /** Graceful stop: stop accepting, finish in-flight calls, close the store. */
  stop(): Promise<void>;
  /** Reads the TLS certificate files again (SIGHUP); new connections get the new certificates. */
  reloadTls(): void;
}

/** Opens the store, serves every service on one port, and returns a handle to stop it all. */
export async function startCoordinator(config: AccordConfig, logger: Logger): Promise<RunningCoordinator> {
  const store = await openStore({
    url: config.store,
    poolSize: config.mysql.poolSize,
    lockWaitTimeoutSeconds: config.mysql.lockWaitTimeoutSeconds,
    onConnectionError: (error) => logger.error({ err: error }, "a new database connection could not be set up; it was closed"),
  });
  const health = createStoreHealth(store, logger);
  const security = config.security;
  const targets = createTargetPolicy(security.allowedTargetHosts, security.allowedTargetSchemes);
  for (const address of infrastructureAddresses(config)) targets.protect(address);
  const read = (path: string) => (path ? readFileSync(path) : undefined);
  const invoker = createBranchInvoker({
    maxCallsPerHost: config.engine.maxCallsPerHost,
    targets,
    tls: { ca: read(security.branchCaFile), cert: read(security.branchCertFile), key: read(security.branchKeyFile) },
  });
  const engine = createEngine({ store, config: config.engine, logger, invoker });
  const tls = loadServerTls(security);
  const shutdown = new AbortController();

  // Filled in once registration starts (after the port is open, so the address is known).
  const cluster: { state: () => RegistrationState } = { state: () => "disabled" };
  const healthz: RequestHandler = (req, res) => {
    if (req.method === "GET" && req.url === "/healthz") {
      void health.check().then((ok) => {
        res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify({ status: ok ? "SERVING" : "NOT_SERVING", store: store.kind, etcd: cluster.state() }));
      });
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found\n");
  };

  const handler = connectNodeAdapter({
    routes: createRoutes({
      store,
      health,
      engine,
      config,
      commands: createCommands({ store, engine, config, targets }),
      admin: {
        logger,
        // pino children made from the root read its level through their prototype unless set themselves.
        logLevel: { current: () => logger.level, set: (level) => (logger.level = level) },
        config: () => config,
      },
    }),
    readMaxBytes: config.limits.maxMessageBytes,
    // Connect ignores unknown JSON by default, and protobuf-es then also drops enum names it does
    // not know: `statuses: ["BOGUS"]` became no filter, listing everything. Strict parsing (the
    // protobuf JSON default) answers INVALID_ARGUMENT instead ("cannot decode enum
    // accord.v1.TransactionStatus from JSON: "BOGUS"": protobuf-es names the enum, not the field),
    // and refuses unknown JSON keys the same way, so a misspelt field fails rather than being
    // ignored, and a JSON client on a newer schema must not send fields this coordinator lacks.
    // Binary protobuf keeps skipping unknown fields; unknown enum numbers reach the handlers,
    // which refuse them naming the field.
    jsonOptions: { ignoreUnknownFields: false },
    interceptors: [createErrorInterceptor(logger), createAuthorizationInterceptor(createAuthorizationPolicy(security), logger)],
    // Only a verified certificate names the caller; an unverified one (mtls optional) does not.
    contextValues: (req) => {
      const socket = req.socket as Partial<TLSSocket>;
      const verified = socket.authorized === true && typeof socket.getPeerCertificate === "function";
      return createContextValues().set(callerIdentity, verified ? identityOf(socket.getPeerCertificate!()) : undefined);
    },
    shutdownSignal: shutdown.signal,
    fallback: healthz,
  });

  let server: OnePortServer | undefined;
  let ops: OpsServer | undefined;
  try {
    server = await listenOnePort({
      host: config.host,
      port: config.port,
      handler,
      logger,
      idleTimeoutMs: config.limits.idleConnectionMs,
      maxConcurrentStreams: config.limits.maxConcurrentStreams,
      idleStreamMs: config.limits.idleStreamMs,
      tls: tls && { ...tls, mtls: security.mtls },
    });
    // Only the healthz handler, never the RPC router: this port has no TLS and no caller identity.
    if (config.ops.port !== 0) ops = await listenOps({ host: config.ops.host, port: config.ops.port, handler: healthz, logger });
  } catch (error) {
    await server?.close(0);
    await store.close();
    throw error;
  }
  // Before any request is read: a branch may never point back at this coordinator's own port.
  targets.protect({ host: config.host, port: server.port, what: "this coordinator's own port" });
  if (ops) targets.protect({ host: config.ops.host, port: ops.port, what: "this coordinator's ops port" });
  engine.start();
  const url = `${tls ? "https" : "http"}://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  const listening = server;
  const unwatchTls = tls ? watchServerTls(security, (material) => listening.reloadTls(material), logger) : () => {};
  logger.info({ url, opsUrl: ops?.url, store: store.kind, config: redactedConfig(config) }, "accord coordinator serving");
  const registration = startRegistration(
    config.cluster,
    { id: engine.coordinatorId, address: config.cluster.advertiseUrl || url, version: ACCORD_VERSION, zone: config.cluster.zone },
    logger,
  );
  cluster.state = registration.state;

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: server.port,
    opsUrl: ops?.url,
    store,
    engine,
    reloadTls() {
      const material = loadServerTls(security);
      if (!material) throw new Error("TLS is not configured (security.tlsCertFile)");
      listening.reloadTls(material);
      logger.info("TLS certificates reloaded");
    },
    stop() {
      stopping ??= (async () => {
        logger.info("stopping: no new connections, finishing in-flight calls");
        // Leave discovery first, so clients stop choosing this coordinator.
        await registration.stop();
        unwatchTls();
        shutdown.abort();
        await listening.close(config.shutdown.graceMs);
        // Closed after the RPC port drains, so probes keep their answer during the grace period.
        await ops?.close();
        await engine.stop(config.shutdown.graceMs);
        invoker.close();
        await store.close();
        logger.info("stopped");
      })();
      return stopping;
    },
  };
}
