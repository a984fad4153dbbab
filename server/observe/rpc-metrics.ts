import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { RpcMetrics } from "./metrics.js";

/** "INVALID_ARGUMENT" for Code.InvalidArgument: the gRPC names the README and the clients use. */
const CODE_NAMES = new Map<Code, string>(
  Object.entries(Code)
    .filter((entry): entry is [string, Code] => typeof entry[1] === "number")
    .map(([name, code]) => [code, name.replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase()]),
);
const codeName = (error: unknown) => CODE_NAMES.get(ConnectError.from(error).code) ?? "UNKNOWN";

/**
 * Counts every RPC by method and code (accord_rpc_handled_total) and times the unary ones.
 * First in the chain, so it sees the codes callers see, after the error interceptor translated
 * them. Methods are the routes' own ("accord.v1.CoordinatorService/Submit"): a path no route
 * serves never reaches an interceptor, so callers cannot add label values.
 */
export function createMetricsInterceptor(metrics: RpcMetrics): Interceptor {
  return (next) => async (request) => {
    const method = `${request.service.typeName}/${request.method.name}`;
    const started = performance.now();
    let response;
    try {
      response = await next(request);
    } catch (error) {
      metrics.rpcHandled(method, codeName(error), request.stream ? undefined : (performance.now() - started) / 1000);
      throw error;
    }
    if (!response.stream) {
      metrics.rpcHandled(method, "OK", (performance.now() - started) / 1000);
      return response;
    }
    // A stream's code is known when it ends: cleanly, with an error, or the caller went away.
    const messages = response.message;
    return {
      ...response,
      message: (async function* () {
        let code = "CANCELED";
        try {
          yield* messages;
          code = "OK";
        } catch (error) {
          code = codeName(error);
          throw error;
        } finally {
          metrics.rpcHandled(method, code, undefined);
        }
      })(),
    };
  };
}
