import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { CommandError } from "../engine/commands/index.js";
import { wrapStreamMessages } from "../transport/stream-response.js";
import { toConnectError } from "./errors.js";

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
 * The API edge: command errors become their Connect codes (errors.ts); errors that are not already
 * ConnectErrors are logged with the method and turned into UNAVAILABLE (store unreachable: safe
 * to retry) or INTERNAL, without internals in the reply. A stream's errors surface while it is
 * read, so its messages are wrapped too.
 */
export function createErrorInterceptor(logger: Logger): Interceptor {
  return (next) => async (request) => {
    const method = `${request.service.typeName}/${request.method.name}`;
    const translate = (error: unknown): ConnectError => {
      if (error instanceof ConnectError) return error;
      if (error instanceof CommandError) return toConnectError(error);
      const connection = errorCode(error);
      logger.error({ err: error, method }, "request failed");
      if (connection) return new ConnectError(`store unavailable (${connection}); retry with the same request_id`, Code.Unavailable);
      return new ConnectError("internal error; the coordinator log has the details", Code.Internal);
    };
    let response;
    try {
      response = await next(request);
    } catch (error) {
      throw translate(error);
    }
    return response.stream ? wrapStreamMessages(response, translate) : response;
  };
}
