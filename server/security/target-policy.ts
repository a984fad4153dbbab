/**
 * Where branch calls may go. Without it, anyone who may call Submit could make the coordinator
 * POST to any address it can reach (an internal admin port, a cloud metadata service) on their
 * behalf. The default allows loopback only.
 */
export interface TargetPolicy {
  /** Why `url` may not be called, or undefined when it may. */
  refusal(url: URL): string | undefined;
}

const list = (csv: string) => csv.split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);

export function createTargetPolicy(allowedHosts: string, allowedSchemes: string): TargetPolicy {
  const hosts = list(allowedHosts);
  const schemes = new Set(list(allowedSchemes));
  const hostAllowed = (host: string) =>
    hosts.some((pattern) => pattern === "*" || pattern === host || (pattern.startsWith("*.") && host.endsWith(pattern.slice(1))));
  return {
    refusal(url) {
      const scheme = url.protocol.replace(/:$/, "");
      if (!schemes.has(scheme)) return `scheme "${scheme}" is not allowed (allowed: ${[...schemes].join(", ")})`;
      const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
      if (!hostAllowed(host)) return `host "${host}" is not in the branch-target allowlist (security.allowedTargetHosts)`;
      return undefined;
    },
  };
}
