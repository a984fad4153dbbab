import { describe, expect, it } from "vitest";
import { RoutingRuleError, gidPoint, routeFor, type CoordinatorEndpoint } from "../../client/index.js";

const stable = (n: number): CoordinatorEndpoint => ({ address: `http://stable-${n}`, labels: { track: "stable" } });
const canary: CoordinatorEndpoint = { address: "http://canary", labels: { track: "canary", version: "0.3.0" } };
const addresses = (endpoints: CoordinatorEndpoint[]) => endpoints.map((e) => e.address);

describe("canary routing", () => {
  it("sends a share of gids, chosen by hash, to the labelled coordinators and the rest to the others", () => {
    const rules = [{ labels: { track: "canary" }, share: 0.2 }];
    const gids = Array.from({ length: 2000 }, (_, i) => `order-${i}`);
    const toCanary = gids.filter((gid) => addresses(routeFor([stable(1), canary, stable(2)], rules, gid)).join() === "http://canary");
    // Every gid goes one way only, and about a fifth goes to the canary.
    for (const gid of gids) {
      const route = addresses(routeFor([stable(1), canary, stable(2)], rules, gid));
      expect(route.join() === "http://canary" || route.join() === "http://stable-1,http://stable-2").toBe(true);
    }
    expect(toCanary.length).toBeGreaterThan(300);
    expect(toCanary.length).toBeLessThan(500);
    // The same gid always routes the same way (retries stick).
    expect(toCanary.every((gid) => gidPoint(gid) < 0.2)).toBe(true);
  });

  it("routes by gid prefix, all labels must match, and falls back to any coordinator when none of the kind is up", () => {
    const rules = [{ labels: { track: "canary", version: "0.3.0" }, gidPrefix: "tenant-a-" }];
    expect(addresses(routeFor([stable(1), canary], rules, "tenant-a-1"))).toEqual(["http://canary"]);
    expect(addresses(routeFor([stable(1), canary], rules, "tenant-b-1"))).toEqual(["http://stable-1"]);
    expect(addresses(routeFor([stable(1), { ...canary, labels: { track: "canary" } }], rules, "tenant-a-1"))).toEqual(["http://stable-1", "http://canary"]);
    expect(addresses(routeFor([stable(1)], rules, "tenant-a-1"))).toEqual(["http://stable-1"]);
    expect(addresses(routeFor([canary], rules, "tenant-b-1"))).toEqual(["http://canary"]);
    expect(addresses(routeFor([stable(1), canary], rules, undefined))).toEqual(["http://stable-1", "http://canary"]);
  });

  it("refuses rules that cannot work", async () => {
    const { createAccordClient } = await import("../../client/index.js");
    expect(() => createAccordClient({ address: "http://127.0.0.1:1", routing: [{ labels: {}, share: 0.1 }] })).toThrow(RoutingRuleError);
    expect(() => createAccordClient({ address: "http://127.0.0.1:1", routing: [{ labels: { track: "canary" }, share: 2 }] })).toThrow(/share must be from 0 to 1/);
    expect(() => createAccordClient({ address: "http://127.0.0.1:1", routing: [{ labels: { track: "canary" } }] })).toThrow(/give share, gidPrefix or both/);
  });
});
