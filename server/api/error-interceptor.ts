import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";

const CONNECTION_ERRORS = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "ER_CON_COUNT_ERROR",
  "CLIENT_CLOSED",
  "SQLITE_BUSY",
]);

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error; typeof e === "object" && e !== null; e = (e as { cause?: unknown }).cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && CONNECTION_ERRORS.has(code)) return code;
  }
  return undefined;
}

/**
 * The API edge: errors that are not already ConnectErrors are logged with the method and turned
 * into UNAVAILABLE (store unreachable: safe to retry) or INTERNAL, without internals in the reply.
 */
export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (request) => {
    try {
      return await next(request);
    } catch (error) {
      if (error instanceof ConnectError) throw error;
      const method = `${request.service.typeName}/${request.method.name}`;
      const connection = errorCode(error);
      logger.error({ err: error, method }, "request failed");
      if (connection) throw new ConnectError(`store unavailable (${connection}); retry with the same request_id`, Code.Unavailable);
      throw new ConnectError("internal error; the coordinator log has the details", Code.Internal);
    }
  };
}
