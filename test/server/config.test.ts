import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, defaultConfig, loadConfig, redactedConfig } from "../../server/config.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "accord-config-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

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

  type Sources = { argv?: string[]; env?: Record<string, string> };
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
