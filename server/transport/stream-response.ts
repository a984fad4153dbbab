import type { DescMessage } from "@bufbuild/protobuf";
import type { StreamResponse } from "@connectrpc/connect";

/**
 * A server stream's errors surface while the handler's messages are read, after an interceptor's
 * `next()` returned: an interceptor that maps errors or ends a span wraps the messages with this.
 * `onEnd` runs however the stream ends: done, failed, or cancelled by the client.
 */
export function wrapStreamMessages<I extends DescMessage, O extends DescMessage>(response: StreamResponse<I, O>, onError: (error: unknown) => unknown, onEnd?: () => void): StreamResponse<I, O> {
  const messages = response.message;
  return {
    ...response,
    message: (async function* () {
      try {
        yield* messages;
      } catch (error) {
        throw onError(error);
      } finally {
        onEnd?.();
      }
    })(),
  };
}
