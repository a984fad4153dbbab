import { ConfigError, commandLineRequest, loadConfig } from "./config.js";
import { helpText } from "./config/docs.js";
import { createLiveConfig } from "./config/live-config.js";
import { startCoordinator, type RunningCoordinator } from "./coordinator.js";
import { createLogger } from "./observe/logger.js";
import { ACCORD_VERSION } from "./version.js";

// Entry point: `npm start -- [--config FILE] [--host H] [--port P] [--store URL] …`; `--help` lists every option.

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const request = commandLineRequest(argv);
  if (request === "help") {
    process.stdout.write(helpText(ACCORD_VERSION));
    return;
  }
  if (request === "version") {
    process.stdout.write(`accord ${ACCORD_VERSION}\n`);
    return;
  }
  const sources = { argv, env: process.env };
  let config;
  try {
    config = loadConfig(sources);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`accord: ${error.message}\n`);
    process.exit(2);
  }
  const logger = createLogger(config.log.level);
  // Reloads read the same sources, so flags and environment keep winning over the file.
  const live = createLiveConfig(config, sources, logger);
  // Signal handlers go in before start-up: the port serves before startCoordinator returns, so a
  // SIGTERM can come while it is still starting, and must stop it gracefully too.
  let coordinator: RunningCoordinator | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "signal received");
    stopSignal = signal;
    coordinator?.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "unclean stop");
        process.exit(1);
      },
    );
  };
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => stop(signal));
  process.on("SIGHUP", () => {
    // reload() logs its own outcome, a failure included, and never throws.
    live.reload("SIGHUP");
    if (!coordinator || !live.current().security.tlsCertFile) return;
    try {
      coordinator.reloadTls();
    } catch (error) {
      logger.error({ err: error }, "SIGHUP: TLS reload failed; keeping the current certificates");
    }
  });
  // SIGUSR2: drain (what AdminService.Drain does), e.g. from a preStop hook before SIGTERM.
  process.on("SIGUSR2", () => {
    if (!coordinator) return;
    coordinator.drain(live.current().shutdown.graceMs).then(
      (running) => logger.info({ running }, "drained (SIGUSR2)"),
      (error: unknown) => logger.error({ err: error }, "SIGUSR2: drain failed"),
    );
  });
  coordinator = await startCoordinator(live, logger).catch((error: unknown) => {
    logger.fatal({ err: error }, "could not start");
    process.exit(1);
  });
  if (stopSignal) stop(stopSignal);
}

await main();
