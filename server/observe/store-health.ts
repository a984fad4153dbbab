import type { Logger } from "pino";
import type { Store } from "../store/index.js";

export interface StoreHealth {
  /** Pings the store now; true when it answered within the timeout. */
  check(): Promise<boolean>;
}

/** Health is the store answering: a coordinator that cannot persist must not take traffic. */
export function createStoreHealth(store: Store, logger: Logger, timeoutMs = 2000): StoreHealth {
  let lastHealthy = true;
  return {
    async check() {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`store ping took over ${timeoutMs}ms`)), timeoutMs);
      });
      let healthy: boolean;
      try {
        await Promise.race([store.ping(), timeout]);
        healthy = true;
      } catch (error) {
        healthy = false;
        if (lastHealthy) logger.warn({ err: error, store: store.kind }, "store health check failed");
      } finally {
        clearTimeout(timer);
      }
      if (healthy && !lastHealthy) logger.info({ store: store.kind }, "store healthy again");
      lastHealthy = healthy;
      return healthy;
    },
  };
}
