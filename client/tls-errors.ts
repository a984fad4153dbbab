import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";

// OpenSSL's names for the alerts a server sends when it wants a client certificate and got none.
// TLS 1.3 has a dedicated alert; TLS 1.2 only has the generic handshake_failure, so that one is
// read as "certificate required" only when this client had no certificate to send.
const CERTIFICATE_REQUIRED = "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED";
const HANDSHAKE_FAILURE = "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE";

/** The Node error codes along an error's `cause` chain. */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  const seen = new Set<unknown>();
  for (let e = error; e instanceof Error && !seen.has(e); e = e.cause) {
    seen.add(e);
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

/**
 * The error a call should report when the coordinator refused the TLS handshake for want of a
 * client certificate: UNAUTHENTICATED saying so, with the original error as its cause. Any other
 * error is returned unchanged. connect-node reports these refusals as INTERNAL with OpenSSL's
 * text, which names neither the reason nor the fix.
 */
export function explainTlsRefusal(error: unknown, context: { address: string; hasCertificate: boolean }): unknown {
  const codes = codesOf(error);
  let reason: string | undefined;
  if (codes.includes(CERTIFICATE_REQUIRED)) {
    reason = "the TLS handshake was refused with a certificate_required alert";
  } else if (codes.includes(HANDSHAKE_FAILURE) && !context.hasCertificate) {
    reason = "the TLS 1.2 handshake was refused (handshake_failure alert) and this client has no certificate to send";
  }
  if (!reason) return error;
  const fix = context.hasCertificate ? "" : "; set tls.cert and tls.key in createAccordClient";
  return new ConnectError(
    `coordinator ${context.address}: a client certificate is required (${reason})${fix}`,
    Code.Unauthenticated,
    undefined,
    undefined,
    error,
  );
}

/** Applies explainTlsRefusal to every call, including errors raised while a stream is read. */
export function tlsRefusalInterceptor(context: { address: string; hasCertificate: boolean }): Interceptor {
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const messages = res.message;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* messages;
          } catch (error) {
            throw explainTlsRefusal(error, context);
          }
        })(),
      };
    } catch (error) {
      throw explainTlsRefusal(error, context);
    }
  };
}
