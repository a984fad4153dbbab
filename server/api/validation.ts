import { requireGid } from "../engine/commands/identifiers.js";

// The same identifier rules as the engine's commands (docs/architecture.md, "Limits"); their
// errors reach callers as INVALID_ARGUMENT through the error interceptor.
export { requireGid };

/** A gid prefix: empty (no filter) or the start of a gid, so the same alphabet and bound. */
export function optionalGidPrefix(prefix: string, field = "gid_prefix"): string | undefined {
  return prefix === "" ? undefined : requireGid(prefix, field);
}
