import { parseAllowEntry } from "../security/target-policy.js";

/** What a branch target's host is counted under when no allowlist entry names it. */
export const OTHER_HOST = "other";

const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443, "grpc:": 80, "grpcs:": 443 };

type ListSetting = string | readonly string[];

/**
 * The `host` label of a branch call: the security.allowedTargetHosts entry the target matched
 * (as written in the config), else "other". A label made of raw hosts would let anyone who may
 * Submit mint series at will (one per host name under "*.domain"); the allowlist is the
 * operator's own, short list. Matching follows server/security/target-policy.ts: the first entry
 * whose host pattern and port (range) both match.
 *
 * `allowed` is read at each call, so a reloaded allowlist labels the next calls; it is parsed
 * again only when it changes (the invoker asks once per distinct target anyway).
 */
export function createHostLabels(allowed: () => ListSetting): (url: URL) => string {
  let source: ListSetting | undefined;
  let entries: { label: string; host: string; ports?: { from: number; to: number } }[] = [];
  const refresh = () => {
    const current = allowed();
    if (current === source) return;
    source = current;
    const list = (typeof current === "string" ? current.split(",") : current).map((s) => s.trim()).filter(Boolean);
    // The config schema validates every entry, so a malformed one never gets this far.
    entries = list.map((label) => ({ label, ...parseAllowEntry(label) }));
  };
  return (url) => {
    refresh();
    const host = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
    const port = url.port ? Number(url.port) : DEFAULT_PORTS[url.protocol] ?? 0;
    const entry = entries.find(
      (e) =>
        (e.host === "*" || e.host === host || (e.host.startsWith("*.") && host.endsWith(e.host.slice(1)))) &&
        (!e.ports || (port >= e.ports.from && port <= e.ports.to)),
    );
    return entry?.label ?? OTHER_HOST;
  };
}
