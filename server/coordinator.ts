import { readFileSync } from "node:fs";
import type { TLSSocket } from "node:tls";
import { createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import { createErrorInterceptor } from "./api/error-interceptor.js";
import { createRoutes } from "./api/routes.js";
import { redactedConfig, type AccordConfig } from "./config.js";
import { createLiveConfig, isLiveConfig, type LiveConfig } from "./config/live-config.js";
import { startRegistration, type RegistrationState } from "./cluster/etcd-registration.js";
import { createCommands } from "./engine/commands/index.js";
import { createEngine, type Engine } from "./engine/engine.js";
import { createBranchInvoker } from "./engine/branch-invoker.js";
import { createRetention } from "./engine/retention.js";
import { createAuthorizationInterceptor, createAuthorizationPolicy, type AuthorizationPolicy } from "./security/authorization.js";
import { callerIdentity, identityOf } from "./security/identity.js";
import { createTargetPolicy, infrastructureAddresses } from "./security/target-policy.js";
import { loadServerTls, watchServerTls } from "./security/tls-files.js";
import { ACCORD_VERSION } from "./version.js";
import { createMetrics, type Metrics } from "./observe/metrics.js";
import { isMetricsRequest, serveMetrics } from "./observe/metrics-endpoint.js";
import { createMetricsInterceptor } from "./observe/rpc-metrics.js";
import { createTracingInterceptor, startTracing, tracingOn } from "./observe/tracing.js";
import { createStoreHealth } from "./observe/store-health.js";
import { openStore, type Store } from "./store/index.js";
import { listenOnePort, type OnePortServer, type RequestHandler } from "./transport/one-port-server.js";
import { listenOps, type OpsServer } from "./transport/ops-server.js";

export interface RunningCoordinator {
  /** Base URL, e.g. http://127.0.0.1:7460 */
  readonly url: string;
  readonly port: number;
  /** Base URL of the plain-HTTP ops listener (GET /healthz, GET /metrics), when `ops.port` is set. */
  readonly opsUrl: string | undefined;
  readonly store: Store;
  readonly engine: Engine;
  /** This coordinator's Prometheus registry and families (GET /metrics). */
  readonly metrics: Metrics;
  /** Graceful stop: stop accepting, finish in-flight calls, close the store. */
  stop(): Promise<void>;
  /**
   * Takes the coordinator out of rotation (AdminService.Drain, SIGUSR2): DRAINING in health, out
   * of etcd, no claims and no new runs, running transactions handed back. Resolves with how many
   * still run after `waitMs`; it keeps serving RPCs until stop().
   */
  drain(waitMs: number): Promise<number>;
  /** Reads the TLS certificate files again (SIGHUP); new connections get the new certificates. */
  reloadTls(): void;
  /** The running configuration: reload, log level, GetConfig (redact with redactedConfig). */
  readonly config: LiveConfig;
}

/**
 * Opens the store, serves every service on one port, and returns a handle to stop it all. Given
 * a LiveConfig made from config sources, it watches the config file and applies what can change
 * live (server/config/live-config.ts); given a plain config, only the log level can change.
 */
export async function startCoordinator(configuration: AccordConfig | LiveConfig, logger: Logger): Promise<RunningCoordinator> {
  const live = isLiveConfig(configuration) ? configuration : createLiveConfig(configuration, undefined, logger);
  // Every key read through the view is its running value at the time it is read: the keys that
  // apply live change under it after a reload, the restart-only ones never do. So what is read
  // once below is fixed for this process, and what components read as they go follows reloads.
  const config = live.view;
  const metrics = createMetrics({ version: ACCORD_VERSION, allowedTargetHosts: () => config.security.allowedTargetHosts });
  const store = await openStore({
    url: config.store,
    poolSize: config.mysql.poolSize,
    lockWaitTimeoutSeconds: config.mysql.lockWaitTimeoutSeconds,
    onConnectionError: (error) => logger.error({ err: error }, "a new database connection could not be set up; it was closed"),
    observer: metrics.store,
  });
  const health = createStoreHealth(store, logger);
  metrics.watchBacklog(store, logger);
  const security = config.security;
  const targets = createTargetPolicy(security.allowedTargetHosts, security.allowedTargetSchemes);
  for (const address of infrastructureAddresses(config)) targets.protect(address);
  const read = (path: string) => (path ? readFileSync(path) : undefined);
  const invoker = createBranchInvoker({
    maxCallsPerHost: config.engine.maxCallsPerHost,
    targets,
    tls: { ca: read(security.branchCaFile), cert: read(security.branchCertFile), key: read(security.branchKeyFile) },
    metrics,
  });
  const engine = createEngine({ store, config: config.engine, logger, invoker, metrics });
  const retention = createRetention({ store, config: () => config.retention, logger, onDeleted: (rows) => metrics.retentionDeleted(rows) });
  const tls = loadServerTls(security);
  const shutdown = new AbortController();
  // The interceptor asks this one, which asks the policy of the running config.
  let authorization = createAuthorizationPolicy(live.current().security);
  const currentAuthorization: AuthorizationPolicy = {
    refusal: (service, identity) => authorization.refusal(service, identity),
    prefixesOf: (identity) => authorization.prefixesOf(identity),
  };
  const unfollow = [
    live.onChange((next, previous) => {
      if (next.engine.maxCallsPerHost !== previous.engine.maxCallsPerHost) invoker.setMaxCallsPerHost(next.engine.maxCallsPerHost);
      if (next.security === previous.security) return;
      targets.update(next.security.allowedTargetHosts, next.security.allowedTargetSchemes);
      authorization = createAuthorizationPolicy(next.security);
    }),
    live.onReload((result) => metrics.configReloaded(result.ok)),
  ];
  const stopFollowing = () => unfollow.forEach((stop) => stop());
  // Off (the default): no tracer, no interceptor, and every span helper returns at once.
  const { otlpEndpoint, serviceName } = config.tracing;
  const tracing = otlpEndpoint
    ? await startTracing({ otlpEndpoint, serviceName, instanceId: engine.coordinatorId }, logger).catch(async (error: unknown) => {
        stopFollowing();
        await store.close();
        throw error;
      })
    : undefined;

  // Filled in once registration starts (after the port is open, so the address is known).
  const cluster: { state: () => RegistrationState } = { state: () => "disabled" };
  // Set once registration exists (below); AdminService.Drain and SIGUSR2 come after that.
  let drainCoordinator: (waitMs: number) => Promise<number> = async () => {
    throw new Error("the coordinator is still starting");
  };
  const opsEndpoints: RequestHandler = (req, res) => {
    if (isMetricsRequest(req)) return serveMetrics(metrics, res, logger);
    if (req.method === "GET" && req.url === "/healthz") {
      void health.status().then((status) => {
        res.writeHead(status === "SERVING" ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify({ status, store: store.kind, etcd: cluster.state() }));
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
        logLevel: { current: () => live.current().log.level, set: (level) => live.setLogLevel(level) },
        config: () => live.current(),
        drain: (waitMs) => drainCoordinator(waitMs),
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
    interceptors: [
      // Outermost: the RPC's span sees the code the caller gets, and contains everything else.
      ...(tracingOn() ? [createTracingInterceptor()] : []),
      createMetricsInterceptor(metrics),
      createErrorInterceptor(logger),
      createAuthorizationInterceptor(currentAuthorization, logger),
    ],
    // Only a verified certificate names the caller; an unverified one (mtls optional) does not.
    contextValues: (req) => {
      const socket = req.socket as Partial<TLSSocket>;
      const verified = socket.authorized === true && typeof socket.getPeerCertificate === "function";
      return createContextValues().set(callerIdentity, verified ? identityOf(socket.getPeerCertificate!()) : undefined);
    },
    shutdownSignal: shutdown.signal,
    fallback: opsEndpoints,
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
    // Only health and metrics, never the RPC router: this port has no TLS and no caller identity.
    if (config.ops.port !== 0) ops = await listenOps({ host: config.ops.host, port: config.ops.port, handler: opsEndpoints, logger });
  } catch (error) {
    stopFollowing();
    await server?.close(0);
    await store.close();
    await tracing?.shutdown();
    throw error;
  }
  // Before any request is read: a branch may never point back at this coordinator's own port.
  targets.protect({ host: config.host, port: server.port, what: "this coordinator's own port" });
  if (ops) targets.protect({ host: config.ops.host, port: ops.port, what: "this coordinator's ops port" });
  engine.start();
  retention.start();
  const url = `${tls ? "https" : "http"}://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`;
  const listening = server;
  const unwatchTls = tls ? watchServerTls(security, (material) => listening.reloadTls(material), logger) : () => {};
  const unwatchConfig = live.watch();
  logger.info({ url, opsUrl: ops?.url, store: store.kind, configFile: live.file, config: redactedConfig(live.current()) }, "accord coordinator serving");
  const registration = startRegistration(
    config.cluster,
    { id: engine.coordinatorId, address: config.cluster.advertiseUrl || url, version: ACCORD_VERSION, zone: config.cluster.zone, labels: config.cluster.labels },
    logger,
  );
  cluster.state = registration.state;
  metrics.watchRegistration(registration.state);
  let leaving: Promise<void> | undefined;
  const leaveDiscovery = () => (leaving ??= registration.stop());

  let draining: Promise<void> | undefined;
  drainCoordinator = async (waitMs) => {
    draining ??= (async () => {
      // Probes and clients learn first (health, then etcd); then nothing new is claimed or run here.
      health.startDraining();
      logger.info("draining: leaving discovery, handing back running transactions");
      await leaveDiscovery();
    })();
    await draining;
    return engine.drain(waitMs);
  };

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: server.port,
    opsUrl: ops?.url,
    store,
    engine,
    metrics,
    config: live,
    drain: (waitMs) => drainCoordinator(waitMs),
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
        await leaveDiscovery();
        unwatchTls();
        unwatchConfig();
        stopFollowing();
        shutdown.abort();
        await listening.close(config.shutdown.graceMs);
        // Closed after the RPC port drains, so probes keep their answer during the grace period.
        await ops?.close();
        await retention.stop();
        await engine.stop(config.shutdown.graceMs);
        invoker.close();
        await store.close();
        // Last, so the spans of everything above are exported.
        await tracing?.shutdown();
        logger.info("stopped");
      })();
      return stopping;
    },
  };
}
