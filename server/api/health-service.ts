import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import type { StoreHealth } from "../observe/store-health.js";

const WATCH_INTERVAL_MS = 1000;

/**
 * grpc.health.v1: SERVING only while the store answers. "" is the whole server; each served
 * service name is accepted too.
 */
export function createHealthService(health: StoreHealth, serviceNames: readonly string[]): ServiceImpl<typeof Health> {
  const known = new Set(["", ...serviceNames]);
  const statusOf = async () => ((await health.check()) ? Status.SERVING : Status.NOT_SERVING);
  return {
    async check({ service }) {
      if (!known.has(service)) throw new ConnectError(`unknown service "${service}"`, Code.NotFound);
      return { status: await statusOf() };
    },
    async list() {
      const status = await statusOf();
      return { statuses: Object.fromEntries([...known].map((name) => [name, { status }])) };
    },
    async *watch({ service }, context) {
      if (!known.has(service)) {
        yield { status: Status.SERVICE_UNKNOWN };
        return;
      }
      let last: Status | undefined;
      while (!context.signal.aborted) {
        const status = await statusOf();
        if (status !== last) yield { status };
        last = status;
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, WATCH_INTERVAL_MS);
          context.signal.addEventListener("abort", () => (clearTimeout(timer), resolve(undefined)), { once: true });
        });
      }
    },
  };
}
