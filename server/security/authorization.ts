import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import type { SecurityConfig } from "../config.js";
import { callerIdentity } from "./identity.js";

/** Who may call what, read from config. Health and reflection are open to every caller. */
export interface AuthorizationPolicy {
  /** Why `identity` may not call `service`, or undefined when it may. */
  refusal(service: string, identity: string | undefined): string | undefined;
  /**
   * The gid prefixes `identity` is confined to: undefined = any gid, [] = none. Once any
   * namespace is configured, an identity the config does not name (anonymous callers included)
   * is confined to the namespace granted to "*", or to none.
   */
  prefixesOf(identity: string | undefined): string[] | undefined;
}

export function createAuthorizationPolicy(security: SecurityConfig): AuthorizationPolicy {
  const coordinator = security.coordinatorCallers;
  const admin = security.adminCallers;
  const tenants = new Map(security.tenantPrefixes.map((n) => [n.identity, n.prefixes]));
  const allowed = (callers: string[], identity: string | undefined) => callers.includes("*") || (identity !== undefined && callers.includes(identity));
  return {
    refusal(service, identity) {
      if (service === CoordinatorService.typeName && !allowed(coordinator, identity)) return "not allowed to call CoordinatorService";
      if (service === AdminService.typeName && !allowed(admin, identity)) return "not allowed to call AdminService";
      return undefined;
    },
    prefixesOf(identity) {
      if (tenants.size === 0) return undefined;
      const prefixes = (identity !== undefined ? tenants.get(identity) : undefined) ?? tenants.get("*") ?? [];
      return prefixes.includes("*") ? undefined : prefixes;
    },
  };
}

/**
 * The gids each CoordinatorService request names, per method. A method missing here is refused
 * to every caller confined to a namespace, so a new RPC cannot skip the check by accident.
 */
const GIDS_OF: Record<string, (message: Record<string, unknown>) => unknown[]> = {
  NewGid: () => [],
  Begin: (m) => [m.gid],
  Submit: (m) => [m.gid],
  Abort: (m) => [m.gid],
  RegisterBranch: (m) => [m.gid],
  GetTransaction: (m) => [m.gid],
  // A confined caller must list within its namespace: an empty prefix is outside every one.
  ListTransactions: (m) => [m.gidPrefix],
  WatchTransaction: (m) => [m.gid],
};

/** The methods whose requests tenant namespaces are checked on (exported for the tests). */
export const namespacedMethods = Object.keys(GIDS_OF);

/** Why a request of `method` is outside `prefixes`, or undefined when it is inside. */
function namespaceRefusal(method: string, message: unknown, prefixes: string[]): string | undefined {
  const gidsOf = GIDS_OF[method];
  if (!gidsOf) return `${method} is not open to callers confined to a namespace`;
  const outside = gidsOf(message as Record<string, unknown>).some((gid) => typeof gid !== "string" || !prefixes.some((p) => gid.startsWith(p)));
  if (!outside) return undefined;
  return prefixes.length === 0 ? "the caller has no gid namespace (security.tenantPrefixes)" : `gid outside the caller's namespace (${prefixes.join(", ")})`;
}

/**
 * PERMISSION_DENIED for callers the policy refuses, and for gids outside a caller's namespace.
 * Streams are checked like unary calls, on every message the handler reads. The identity is
 * logged, never sent back.
 */
export function createAuthorizationInterceptor(policy: AuthorizationPolicy, logger: Logger): Interceptor {
  return (next) => async (request) => {
    const identity = request.contextValues.get(callerIdentity);
    const service = request.service.typeName;
    const method = request.method.name;
    const deny = (reason: string) => {
      logger.warn({ identity: identity ?? "(anonymous)", method: `${service}/${method}`, reason }, "permission denied");
      return new ConnectError(`permission denied: ${reason}`, Code.PermissionDenied);
    };
    const refusal = policy.refusal(service, identity);
    if (refusal) throw deny(refusal);
    const prefixes = policy.prefixesOf(identity);
    if (!prefixes || service !== CoordinatorService.typeName) return next(request);
    const check = (message: unknown) => {
      const outside = namespaceRefusal(method, message, prefixes);
      if (outside) throw deny(outside);
    };
    if (!request.stream) {
      check(request.message);
      return next(request);
    }
    const messages = request.message;
    return next({
      ...request,
      message: (async function* () {
        for await (const message of messages) {
          check(message);
          yield message;
        }
      })(),
    });
  };
}
