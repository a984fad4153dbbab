import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { commandLineRequest, ConfigError, defaultConfig, envName, flagName, loadConfig, redactedConfig, resolveConfig } from "../../server/config.js";
import { exampleYaml, helpText } from "../../server/config/docs.js";
import { CONFIG_OPTIONS } from "../../server/config/schema.js";
import { ACCORD_VERSION } from "../../server/version.js";
import { spawnCoordinator } from "../support/coordinator-process.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "accord-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Sources = { argv?: string[]; env?: Record<string, string> };

describe("configuration", () => {
  it("works with nothing set: loopback, port 7460, embedded store", () => {
    const config = loadConfig({ argv: [], env: {} });
    expect(config).toEqual(defaultConfig());
    expect(config).toMatchObject({ host: "127.0.0.1", port: 7460, store: "file:./data/accord.db" });
  });

  it("layers flags over environment over file over defaults", async () => {
    const file = join(dir, "accord.yaml");
    await writeFile(file, "port: 9000\nhost: 127.0.0.2\nlog:\n  level: warn\nlimits:\n  maxBranches: 10\n");
    const config = loadConfig({
      argv: ["--config", file, "--port", "9002", "--limits-max-payload-bytes=2048"],
      env: { ACCORD_PORT: "9001", ACCORD_LOG_LEVEL: "debug", ACCORD_STORE: "mysql://u:secret@127.0.0.1:3306/accord" },
    });
    expect(config).toMatchObject({
      host: "127.0.0.2",
      port: 9002,
      store: "mysql://u:secret@127.0.0.1:3306/accord",
      log: { level: "debug" },
      limits: { maxBranches: 10, maxPayloadBytes: 2048 },
    });
    expect(redactedConfig(config).store).toBe("mysql://u:REDACTED@127.0.0.1:3306/accord");
  });

  it("reads a JSON file too", async () => {
    const file = join(dir, "accord.json");
    await writeFile(file, JSON.stringify({ shutdown: { graceMs: 5 }, mysql: { poolSize: 3 } }));
    expect(loadConfig({ argv: [`--config=${file}`], env: {} })).toMatchObject({ shutdown: { graceMs: 5 }, mysql: { poolSize: 3 } });
  });

  it.each<[Sources, RegExp]>([
    [{ argv: [], env: { ACCORD_PORT: "seventy" } }, /config key "port" \(ACCORD_PORT\): expected an integer from 0 to 65535, got "seventy"/],
    [{ argv: ["--log-level", "loud"] }, /config key "log.level" \(--log-level\): expected one of trace, debug/],
    [{ argv: ["--store", "postgres://x/y"] }, /config key "store".*file:PATH or mysql:/],
    [{ argv: ["--no-such-flag", "1"] }, /config key "--no-such-flag"/],
    [{ argv: ["--port"] }, /config key "--port".*a value after the flag/],
  ])("stops with one line naming the key for %j", (sources, message) => {
    const error = (() => {
      try {
        loadConfig({ argv: sources.argv ?? [], env: sources.env ?? {} });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("names unknown and mistyped keys in the file", async () => {
    const unknown = join(dir, "unknown.yaml");
    await writeFile(unknown, "limits:\n  maxBranchez: 3\n");
    expect(() => loadConfig({ argv: ["--config", unknown], env: {} })).toThrow(/config key "limits.maxBranchez" \(.*unknown.yaml\): expected a known key/);
    const mistyped = join(dir, "mistyped.yaml");
    await writeFile(mistyped, "limits: 5\n");
    expect(() => loadConfig({ argv: ["--config", mistyped], env: {} })).toThrow(/config key "limits".*expected a mapping/);
    expect(() => loadConfig({ argv: ["--config", join(dir, "missing.yaml")], env: {} })).toThrow(/config key "--config".*readable YAML or JSON/);
  });
});

describe("lists and maps", () => {
  it("reads YAML lists and a list of {identity, prefixes} from the file", async () => {
    const file = join(dir, "lists.yaml");
    await writeFile(
      file,
      [
        "cluster:",
        "  etcdEndpoints: [http://10.0.0.6:2379, https://10.0.0.7:2379]",
        "security:",
        "  adminCallers:",
        "    - ops.test",
        "  allowedTargetHosts: [orders.internal:8080, '[::1]:9000']",
        "  tenantPrefixes:",
        "    - identity: spiffe://shop/orders",
        "      prefixes: [orders-, refunds-]",
        "    - identity: '*'",
        "      prefixes: []",
        "",
      ].join("\n"),
    );
    const config = loadConfig({ argv: ["--config", file], env: {} });
    expect(config.cluster.etcdEndpoints).toEqual(["http://10.0.0.6:2379", "https://10.0.0.7:2379"]);
    expect(config.security).toMatchObject({
      adminCallers: ["ops.test"],
      coordinatorCallers: ["*"],
      allowedTargetHosts: ["orders.internal:8080", "[::1]:9000"],
      tenantPrefixes: [
        { identity: "spiffe://shop/orders", prefixes: ["orders-", "refunds-"] },
        { identity: "*", prefixes: [] },
      ],
    });
  });

  it("takes comma lists, and the old identity=prefix|prefix;… form, from env and flags", () => {
    const config = loadConfig({
      argv: ["--security-coordinator-callers", "spiffe://a, ops.test", "--security-tenant-prefixes=spiffe://a=a-|b-; ops.test=*"],
      env: { ACCORD_CLUSTER_ETCD_ENDPOINTS: "http://e1:2379,,http://e2:2379", ACCORD_SECURITY_ALLOWED_TARGET_SCHEMES: "https" },
    });
    expect(config.security.coordinatorCallers).toEqual(["spiffe://a", "ops.test"]);
    expect(config.security.tenantPrefixes).toEqual([
      { identity: "spiffe://a", prefixes: ["a-", "b-"] },
      { identity: "ops.test", prefixes: ["*"] },
    ]);
    expect(config.cluster.etcdEndpoints).toEqual(["http://e1:2379", "http://e2:2379"]);
    expect(config.security.allowedTargetSchemes).toEqual(["https"]);
  });

  it.each<[Sources, RegExp]>([
    [{ env: { ACCORD_CLUSTER_ETCD_ENDPOINTS: "http://e1:2379,e2:2379" } }, /"cluster.etcdEndpoints" \(ACCORD_CLUSTER_ETCD_ENDPOINTS\): expected a list of http\(s\):\/\/host:port/],
    [{ argv: ["--security-allowed-target-hosts", "a,host:70000"] }, /"security.allowedTargetHosts" \(--security-allowed-target-hosts\): expected a list of host.*; "host:70000": port "70000" is not 1-65535, got "a,host:70000"/],
    [{ argv: ["--security-tenant-prefixes", "spiffe://a=a-;spiffe://b"] }, /"security.tenantPrefixes" \(--security-tenant-prefixes\): expected a list of \{identity, prefixes\}/],
  ])("names the list key for %j", (sources, message) => {
    expect(() => loadConfig({ argv: sources.argv ?? [], env: sources.env ?? {} })).toThrow(message);
  });

  it("refuses an empty gid prefix in the file, which would match every gid", async () => {
    const file = join(dir, "empty-prefix.yaml");
    await writeFile(file, "security:\n  tenantPrefixes:\n    - identity: a\n      prefixes: ['']\n");
    expect(() => loadConfig({ argv: ["--config", file], env: {} })).toThrow(/config key "security.tenantPrefixes" \(.*empty-prefix.yaml\): expected a list of \{identity, prefixes\}/);
  });

  it("resolveConfig fills defaults, takes comma strings for lists and names an unknown key", () => {
    const config = resolveConfig({ security: { adminCallers: "a,b", tenantPrefixes: "a=x-" }, cluster: { etcdEndpoints: "http://e:2379" } });
    expect(config.security.adminCallers).toEqual(["a", "b"]);
    expect(config.security.tenantPrefixes).toEqual([{ identity: "a", prefixes: ["x-"] }]);
    expect(config.cluster.etcdEndpoints).toEqual(["http://e:2379"]);
    expect(config.engine).toEqual(defaultConfig().engine);
    expect(() => resolveConfig({ engine: { leaseMs: 1 } })).toThrow(/config key "engine.leaseMs" \(configuration\): expected an integer from 100/);
    expect(() => resolveConfig({ engine: { leaseMss: 1 } } as never)).toThrow(/config key "engine.leaseMss".*expected a known key/);
  });
});

describe("docs/accord.example.yaml", () => {
  const examplePath = fileURLToPath(new URL("../../docs/accord.example.yaml", import.meta.url));

  it("is what `npm run config:example` writes from the schema", async () => {
    expect(await readFile(examplePath, "utf8")).toBe(exampleYaml());
  });

  it("names every key and loads as the defaults", async () => {
    const parsed = parseYaml(await readFile(examplePath, "utf8")) as Record<string, Record<string, unknown>>;
    for (const option of CONFIG_OPTIONS) {
      const [first, second] = option.path;
      expect(second === undefined ? first! in parsed : second in (parsed[first!] ?? {}), option.key).toBe(true);
    }
    expect(loadConfig({ argv: ["--config", examplePath], env: {} })).toEqual(defaultConfig());
  });

  it("shows examples that load", async () => {
    const examples = CONFIG_OPTIONS.filter((o) => o.doc.example !== undefined);
    expect(examples.map((o) => o.key)).toContain("security.tenantPrefixes");
    for (const option of examples) {
      const file = join(dir, `${option.key}.yaml`);
      const [section, key] = option.path;
      await writeFile(file, stringifyYaml({ [section!]: { [key!]: option.doc.example } }));
      expect(valueAt(loadConfig({ argv: ["--config", file], env: {} }), option.path), option.key).toEqual(option.doc.example);
    }
  });
});

const valueAt = (config: object, path: string[]) => path.reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], config);

describe("--help and --version, through the real entry point", () => {
  const run = async (args: string[]) => {
    const proc = spawnCoordinator(args);
    const code = await proc.exited;
    return { code, ...proc.output() };
  };

  it("--help lists every option with its flag, env name and default, and exits 0", { timeout: 60_000 }, async () => {
    const { code, stdout } = await run(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toBe(helpText(ACCORD_VERSION));
    for (const option of CONFIG_OPTIONS) {
      const block = stdout.slice(stdout.indexOf(`  ${flagName(option.key)} `));
      expect(block, option.key).toContain(`Env: ${envName(option.key)}. File: ${option.key}.`);
      expect(block.split(`Env: ${envName(option.key)}`)[0], option.key).toMatch(/Default: .+\. $/);
      expect(block.split(`Env: ${envName(option.key)}`)[0], option.key).toContain(option.doc.description.split(" ").slice(0, 3).join(" "));
    }
    expect(stdout).toContain("Default: 7460. Env: ACCORD_PORT. File: port.");
    expect(stdout).toContain("Default: 127.0.0.1,localhost,::1. Env: ACCORD_SECURITY_ALLOWED_TARGET_HOSTS.");
  });

  it("-h is --help, even after other flags, and --version prints the version", { timeout: 60_000 }, async () => {
    const [short, version] = await Promise.all([run(["--port", "1", "-h"]), run(["--version"])]);
    expect(short.code).toBe(0);
    expect(short.stdout).toContain("--engine-lease-ms INT");
    expect(version).toMatchObject({ code: 0, stdout: `accord ${ACCORD_VERSION}\n` });
  });

  it("a flag's value that reads --help is a value, not a request", () => {
    expect(commandLineRequest(["--engine-coordinator-id", "--help"])).toBeUndefined();
    expect(commandLineRequest(["--engine-coordinator-id=x", "--help"])).toBe("help");
  });
});
