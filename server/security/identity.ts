import type { PeerCertificate } from "node:tls";
import { createContextKey } from "@connectrpc/connect";

/** The caller's identity: its client certificate's first SAN URI, else first SAN DNS, else CN. */
export function identityOf(cert: PeerCertificate | undefined): string | undefined {
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const sans = (cert.subjectaltname ?? "").split(",").map((s) => s.trim());
  const first = (kind: string) => sans.find((s) => s.startsWith(`${kind}:`))?.slice(kind.length + 1);
  return first("URI") ?? first("DNS") ?? (typeof cert.subject?.CN === "string" ? cert.subject.CN : undefined);
}

/** Carries the identity from the TLS socket to the interceptors (Connect context values). */
export const callerIdentity = createContextKey<string | undefined>(undefined, { description: "caller identity" });
