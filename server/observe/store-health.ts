import type { Logger } from "pino";
import type { Store } from "../store/index.js";

export interface StoreHealth {
  /** Whether this coordinator should get traffic: the store answers and it is not draining. */
  check(): Promise<boolean>;
  /** SERVING, NOT_SERVING (the store does not answer) or DRAINING (being taken out of rotation). */
  status(): Promise<"SERVING" | "NOT_SERVING" | "DRAINING">;
  /** From now on, report DRAINING. */
  startDraining(): void;
}

/** Health is the store answering: a coordinator that cannot persist must not take traffic. */
export function createStoreHealth(store: Store, logger: Logger, timeoutMs = 2000): StoreHealth {
  let lastHealthy = true;
  let draining = false;
  const pingStore = async () => {
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
  };
  const status = async () => (draining ? "DRAINING" : (await pingStore()) ? "SERVING" : "NOT_SERVING");
  return {
    status,
    check: async () => (await status()) === "SERVING",
    startDraining() {
      draining = true;
    },
  };
}
