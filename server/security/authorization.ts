import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { SecurityConfig } from "../config.js";
import { callerIdentity } from "./identity.js";

/** Who may call what, read from config. Health and reflection are open to every caller. */
export interface AuthorizationPolicy {
  /** Why `identity` may not call `service`, or undefined when it may. */
  refusal(service: string, identity: string | undefined): string | undefined;
  /** The gid prefixes `identity` is confined to; undefined = any gid. */
  prefixesOf(identity: string | undefined): string[] | undefined;
}

const list = (csv: string) => csv.split(",").map((s) => s.trim()).filter(Boolean);

export function createAuthorizationPolicy(security: SecurityConfig): AuthorizationPolicy {
  const coordinator = list(security.coordinatorCallers);
  const admin = list(security.adminCallers);
  const tenants = new Map(
    security.tenantPrefixes
      .split(";")
      .map((entry) => entry.trim())
      .filter(Boolean)
      .map((entry) => {
        const at = entry.lastIndexOf("=");
        return [entry.slice(0, at).trim(), entry.slice(at + 1).split("|").map((p) => p.trim()).filter(Boolean)] as const;
      }),
  );
  const allowed = (callers: string[], identity: string | undefined) => callers.includes("*") || (identity !== undefined && callers.includes(identity));
  return {
    refusal(service, identity) {
      if (service === "accord.v1.CoordinatorService" && !allowed(coordinator, identity)) return "not allowed to call CoordinatorService";
      if (service === "accord.v1.AdminService" && !allowed(admin, identity)) return "not allowed to call AdminService";
      return undefined;
    },
    prefixesOf: (identity) => (identity === undefined ? undefined : tenants.get(identity)),
  };
}

/** The gid a request names, if any (for tenant namespaces). */
function requestGids(message: unknown): string[] {
  const m = message as { gid?: unknown; gidPrefix?: unknown };
  return [m.gid, m.gidPrefix].filter((v): v is string => typeof v === "string");
}

/**
 * PERMISSION_DENIED for callers the policy refuses, and for gids outside a tenant's namespace.
 * The identity is logged, never sent back.
 */
export function createAuthorizationInterceptor(policy: AuthorizationPolicy, logger: Logger): Interceptor {
  return (next) => async (request) => {
    const identity = request.contextValues.get(callerIdentity);
    const service = request.service.typeName;
    const deny = (reason: string) => {
      logger.warn({ identity: identity ?? "(anonymous)", method: `${service}/${request.method.name}`, reason }, "permission denied");
      return new ConnectError(`permission denied: ${reason}`, Code.PermissionDenied);
    };
    const refusal = policy.refusal(service, identity);
    if (refusal) throw deny(refusal);
    const prefixes = policy.prefixesOf(identity);
    if (prefixes && service === "accord.v1.CoordinatorService" && !request.stream) {
      // Every gid (and a listing's gid_prefix, which a tenant must give) stays in the namespace.
      const outside = requestGids(request.message).some((gid) => !prefixes.some((p) => gid.startsWith(p)));
      if (outside) throw deny(`gid outside the caller's namespace (${prefixes.join(", ")})`);
    }
    return next(request);
  };
}
