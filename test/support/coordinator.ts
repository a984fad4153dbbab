import { pino, type Logger } from "pino";
import { defaultConfig, resolveConfig, type AccordConfig, type ConfigOverrides } from "../../server/config.js";
import { startCoordinator, type RunningCoordinator } from "../../server/coordinator.js";

/** The engine settings test coordinators run with: fast polls and retries, floors lowered so tests can ask for short intervals (the floors have their own test). */
export const FAST_ENGINE = {
  pollIntervalMs: 50,
  retryInitialMs: 50,
  retryMaxMs: 400,
  ongoingIntervalMs: 50,
  leaseMs: 2000,
  minRetryIntervalMs: 10,
  minOngoingIntervalMs: 10,
  minBranchTimeoutMs: 10,
};

/** Lists may be given as the comma strings env and flags take ("a,b"; tenantPrefixes "id=p|q;id2=r"). */
export function testConfig(store: string, overrides: ConfigOverrides = {}): AccordConfig {
  const base = defaultConfig();
  return resolveConfig({
    ...base,
    ...overrides,
    port: overrides.port ?? 0,
    store,
    log: { ...base.log, ...overrides.log },
    mysql: { ...base.mysql, ...overrides.mysql },
    limits: { ...base.limits, ...overrides.limits },
    ops: { ...base.ops, ...overrides.ops },
    shutdown: { ...base.shutdown, graceMs: 2000, ...overrides.shutdown },
    cluster: { ...base.cluster, ...overrides.cluster },
    security: { ...base.security, ...overrides.security },
    engine: { ...base.engine, ...FAST_ENGINE, ...overrides.engine },
  });
}

/** An in-process coordinator on a free port; logs go nowhere unless ACCORD_TEST_LOGS is set or a logger is given. */
export function startTestCoordinator(store: string, overrides: ConfigOverrides = {}, logger?: Logger): Promise<RunningCoordinator> {
  return startCoordinator(testConfig(store, overrides), logger ?? pino({ level: process.env.ACCORD_TEST_LOGS ? "debug" : "silent" }));
}
