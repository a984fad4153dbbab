import { create, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminService } from "../../gen/accord/v1/admin_pb.js";
import { CoordinatorService } from "../../gen/accord/v1/coordinator_pb.js";
import { Mode } from "../../gen/accord/v1/transaction_pb.js";
import type { RunningCoordinator } from "../../server/coordinator.js";
import { namespacedMethods } from "../../server/security/authorization.js";
import { TestPki, type CertFiles } from "../support/certificates.js";
import { startTestCoordinator } from "../support/coordinator.js";
import { sqliteBackend } from "../support/stores.js";

// Every RPC (unary and streaming) × every kind of caller, with mTLS optional and the default
// coordinatorCallers "*": the set-up where anonymous callers and certificates from other CAs get
// through the handshake. The table comes from the service descriptors, so a new RPC is in it.

type Caller = "anonymous" | "other CA" | "tenant A" | "tenant B" | "unlisted identity" | "operator";
const CALLERS: Caller[] = ["anonymous", "other CA", "tenant A", "tenant B", "unlisted identity", "operator"];
/** The transaction every call names belongs to tenant B. */
const GID = "tenant-b-1";

let pki: TestPki;
let ca: CertFiles;
const certs = new Map<Caller, CertFiles | undefined>();
let coordinator: RunningCoordinator;
const backend = sqliteBackend();

beforeAll(async () => {
  pki = await TestPki.create();
  ca = await pki.ca("authz-ca");
  const rogueCa = await pki.ca("rogue-ca");
  const server = await pki.leaf(ca, { cn: "localhost", san: ["DNS:localhost", "IP:127.0.0.1"], serverAuth: true });
  certs.set("anonymous", undefined);
  // Claims tenant B's identity, signed by a CA the coordinator does not trust.
  certs.set("other CA", await pki.leaf(rogueCa, { cn: "b", san: ["URI:spiffe://test/b"] }));
  certs.set("tenant A", await pki.leaf(ca, { cn: "a", san: ["URI:spiffe://test/a"] }));
  certs.set("tenant B", await pki.leaf(ca, { cn: "b", san: ["URI:spiffe://test/b"] }));
  certs.set("unlisted identity", await pki.leaf(ca, { cn: "unlisted", san: ["URI:spiffe://test/unlisted"] }));
  certs.set("operator", await pki.leaf(ca, { cn: "ops", san: ["DNS:ops.test"] }));
  coordinator = await startTestCoordinator(await backend.freshUrl(), {
    security: {
      tlsCertFile: server.certFile,
      tlsKeyFile: server.keyFile,
      tlsCaFile: ca.certFile,
      mtls: "optional",
      adminCallers: "ops.test",
      tenantPrefixes: "spiffe://test/a=tenant-a-;spiffe://test/b=tenant-b-;ops.test=*",
    },
  });
  await clientFor(CoordinatorService, "tenant B").begin({ gid: GID, mode: Mode.TCC, options: { preparedTimeout: { seconds: 3600n } } });
});
afterAll(async () => {
  await coordinator?.stop();
  await backend.cleanup();
  await pki.cleanup();
});

function clientFor<S extends DescService>(service: S, caller: Caller): Client<S> {
  const cert = certs.get(caller);
  const transport = createGrpcTransport({
    baseUrl: `https://localhost:${coordinator.port}`,
    nodeOptions: { ca: ca.cert, ...(cert ? { cert: cert.cert, key: cert.key } : {}) },
  });
  return createClient(service, transport);
}

/** A request of `schema` naming tenant B's transaction in every gid field it has. */
function requestFor(schema: DescMessage) {
  const init: Record<string, unknown> = {};
  for (const field of schema.fields) {
    if (field.localName === "gid") init.gid = GID;
    if (field.localName === "gidPrefix") init.gidPrefix = "tenant-b-";
  }
  return create(schema, init);
}

/** Calls `method` as `caller`; a stream is read to its first message. */
async function call(service: DescService, method: DescMethod, caller: Caller): Promise<{ code: Code | "ok"; message: string; reply?: unknown }> {
  const client = clientFor(service, caller) as unknown as Record<string, (request: unknown, options?: unknown) => unknown>;
  const request = requestFor(method.input);
  try {
    if (method.methodKind === "server_streaming") {
      const abort = new AbortController();
      for await (const reply of client[method.localName]!(request, { signal: abort.signal }) as AsyncIterable<unknown>) {
        abort.abort();
        return { code: "ok", message: "", reply };
      }
      return { code: "ok", message: "" };
    }
    return { code: "ok", message: "", reply: await client[method.localName]!(request) };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: e.code, message: e.rawMessage };
  }
}

/** Who may call each method on tenant B's gid. */
function mayCall(service: DescService, method: DescMethod, caller: Caller): boolean {
  if (service.typeName === AdminService.typeName) return caller === "operator";
  if (method.name === "NewGid") return true;
  return caller === "tenant B" || caller === "operator";
}

const rpcs = [CoordinatorService, AdminService].flatMap((service) => service.methods.map((method) => ({ service, method })));

describe("authorization of every RPC for every kind of caller", () => {
  it("covers every CoordinatorService method with a namespace rule", () => {
    expect(CoordinatorService.methods.map((m) => m.name).sort()).toEqual([...namespacedMethods].sort());
    expect(rpcs.some(({ method }) => method.methodKind === "server_streaming")).toBe(true);
  });

  it.each(rpcs.flatMap(({ service, method }) => CALLERS.map((caller) => ({ service, method, caller, label: `${service.name}/${method.name} as ${caller}` }))))(
    "$label",
    async ({ service, method, caller }) => {
      const result = await call(service, method, caller);
      if (!mayCall(service, method, caller)) {
        expect(result.code).toBe(Code.PermissionDenied);
        // The refusal says why without echoing identities.
        expect(result.message).not.toContain("spiffe");
        return;
      }
      expect(result.code).not.toBe(Code.PermissionDenied);
      if (method.name === "GetTransaction" || method.name === "WatchTransaction") {
        expect(result).toMatchObject({ code: "ok", reply: { transaction: { gid: GID } } });
      }
      if (method.name === "ListTransactions") {
        expect(result.code).toBe("ok");
        expect((result.reply as { transactions: { gid: string }[] }).transactions.map((t) => t.gid)).toContain(GID);
      }
    },
  );

  it("keeps request ids per caller: the same id from two callers is two requests, and no error names the other's gid", async () => {
    const a = clientFor(CoordinatorService, "tenant A");
    const b = clientFor(CoordinatorService, "tenant B");
    const begin = (gid: string) => ({ gid, mode: Mode.TCC, requestId: "shared-request-id", options: { preparedTimeout: { seconds: 3600n } } });
    expect((await b.begin(begin("tenant-b-rid"))).transaction?.gid).toBe("tenant-b-rid");
    expect((await a.begin(begin("tenant-a-rid"))).transaction?.gid).toBe("tenant-a-rid");
    // A's replay answers A's transaction; B's id is untouched.
    expect((await a.begin(begin("tenant-a-rid"))).transaction?.gid).toBe("tenant-a-rid");
    const reused = await a.begin(begin("tenant-a-rid-2")).catch((e: unknown) => ConnectError.from(e));
    expect(reused).toMatchObject({ code: Code.InvalidArgument });
    expect((reused as ConnectError).rawMessage).not.toContain("tenant-b");
    expect((reused as ConnectError).rawMessage).not.toContain("tenant-a-rid\"");
  });

  it("lets each tenant read its own transactions only", async () => {
    const a = clientFor(CoordinatorService, "tenant A");
    await a.begin({ gid: "tenant-a-1", mode: Mode.TCC, options: { preparedTimeout: { seconds: 3600n } } });
    const listed = await a.listTransactions({ gidPrefix: "tenant-a-" });
    expect(listed.transactions.map((t) => t.gid).filter((g) => !g.includes("rid"))).toEqual(["tenant-a-1"]);
    // A prefix that starts inside the namespace but is shorter than it would widen it.
    await expect(a.listTransactions({ gidPrefix: "tenant-" })).rejects.toMatchObject({ code: Code.PermissionDenied });
    await expect(clientFor(CoordinatorService, "anonymous").listTransactions({})).rejects.toMatchObject({ code: Code.PermissionDenied });
  });
});
