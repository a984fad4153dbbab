import { createHash } from "node:crypto";

/** A coordinator as discovery sees it: where to dial, and the labels it registered with. */
export interface CoordinatorEndpoint {
  address: string;
  labels: Readonly<Record<string, string>>;
}

/**
 * Sends some new transactions to coordinators carrying given labels (a canary release): those
 * whose gid starts with `gidPrefix` (a tenant's namespace, say), and/or a `share` of them chosen
 * by a hash of the gid, so every call for one transaction — and every retry — goes the same way.
 * When both are given, both must hold.
 */
export interface RoutingRule {
  /** The coordinators that take matching transactions: each label must be present with this value. */
  labels: Readonly<Record<string, string>>;
  /** From 0 to 1: the part of transactions (by gid hash) this rule takes. */
  share?: number;
  /** Only transactions whose gid starts with this. */
  gidPrefix?: string;
}

/** Thrown for a rule that cannot work, naming what is wrong. */
export class RoutingRuleError extends Error {
  override name = "RoutingRuleError";
}

/** Checks rules once, where they are given, so a typo fails loudly instead of routing nothing. */
export function checkRoutingRules(rules: readonly RoutingRule[]): RoutingRule[] {
  rules.forEach((rule, i) => {
    if (Object.keys(rule.labels).length === 0) throw new RoutingRuleError(`routing rule ${i}: labels must name at least one label`);
    if (rule.share !== undefined && !(rule.share >= 0 && rule.share <= 1)) throw new RoutingRuleError(`routing rule ${i}: share must be from 0 to 1`);
    if (rule.share === undefined && rule.gidPrefix === undefined) throw new RoutingRuleError(`routing rule ${i}: give share, gidPrefix or both`);
  });
  return rules.map((rule) => ({ ...rule, labels: { ...rule.labels } }));
}

/** Where a gid falls in [0, 1): the same on every client and every retry. */
export function gidPoint(gid: string): number {
  return createHash("sha256").update(gid).digest().readUInt32BE(0) / 2 ** 32;
}

const carries = (endpoint: CoordinatorEndpoint, labels: Readonly<Record<string, string>>) =>
  Object.entries(labels).every(([name, value]) => endpoint.labels[name] === value);

function matches(rule: RoutingRule, gid: string): boolean {
  if (rule.gidPrefix !== undefined && !gid.startsWith(rule.gidPrefix)) return false;
  return rule.share === undefined || gidPoint(gid) < rule.share;
}

/**
 * The coordinators a call for `gid` should go to: those of the first rule the gid matches; for a
 * gid no rule takes, those that carry none of the rules' labels (the stable ones). When none of
 * the chosen kind is up, every live coordinator (so a missing canary never stops the work).
 */
export function routeFor(endpoints: readonly CoordinatorEndpoint[], rules: readonly RoutingRule[], gid: string | undefined): CoordinatorEndpoint[] {
  if (gid === undefined || rules.length === 0) return [...endpoints];
  const rule = rules.find((r) => matches(r, gid));
  const chosen = rule ? endpoints.filter((e) => carries(e, rule.labels)) : endpoints.filter((e) => !rules.some((r) => carries(e, r.labels)));
  return chosen.length > 0 ? chosen : [...endpoints];
}
