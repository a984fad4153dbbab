import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServerProcess } from "./child-process.js";
import { freePort } from "./free-port.js";

/** One sample of a scrape: `name{labels} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A scrape: the samples, and the family (from # TYPE) each sample name belongs to. */
export interface Scrape {
  samples: Sample[];
  /** Family name → its type (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
  familyOf(sample: Sample): string;
  /** The value of the one sample with this name and exactly these labels; undefined if none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** The sum over the samples with this name whose labels include `labels`. */
  sum(name: string, labels?: Record<string, string>): number;
}

const unescape = (value: string) => value.replace(/\\(["\\n])/g, (_, c: string) => (c === "n" ? "\n" : c));

/** Parses the Prometheus text exposition format (version 0.0.4). */
export function parseExposition(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [, , family, type] = line.split(" ");
      types.set(family!, type!);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]!] = unescape(pair[2]!);
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  const familyOf = (sample: Sample) => {
    if (types.has(sample.name)) return sample.name;
    const base = sample.name.replace(/_(bucket|sum|count|total|created)$/, "");
    return types.has(base) ? base : sample.name;
  };
  const matches = (sample: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => sample.labels[k] === v);
  return {
    samples,
    types,
    familyOf,
    value(name, labels = {}) {
      const found = samples.filter((s) => s.name === name && matches(s, labels) && Object.keys(s.labels).length === Object.keys(labels).length);
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
    sum(name, labels = {}) {
      return samples.filter((s) => s.name === name && matches(s, labels)).reduce((total, s) => total + s.value, 0);
    },
  };
}

export async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return parseExposition(await response.text());
}

/** A throwaway Prometheus server (Debian's `prometheus` binary) in a temp dir. */
export interface ThrowawayPrometheus {
  url: string;
  /** GET /api/v1/<path> and its `data`; throws on a non-success answer. */
  api<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

export interface PrometheusSetup {
  /** host:port of each scrape target (job "accord", path /metrics). */
  targets: string[];
  /** The rule files' contents, by file name. */
  rules: Record<string, string>;
  /** Scrape and rule evaluation interval, e.g. "1s". */
  interval: string;
}

export async function startPrometheus(setup: PrometheusSetup): Promise<ThrowawayPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), "accord-prometheus-"));
  const ruleFiles = await Promise.all(
    Object.entries(setup.rules).map(async ([name, text]) => {
      const path = join(dir, name);
      await writeFile(path, text);
      return path;
    }),
  );
  const config = {
    global: { scrape_interval: setup.interval, evaluation_interval: setup.interval, scrape_timeout: setup.interval },
    rule_files: ruleFiles,
    scrape_configs: [{ job_name: "accord", static_configs: [{ targets: setup.targets }] }],
  };
  // JSON is YAML, and needs no YAML writer here.
  await writeFile(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let stop: () => Promise<void>;
  try {
    stop = await startServerProcess(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      async () => (await fetch(`${url}/-/ready`)).status === 200,
    );
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    async api<T>(path: string) {
      const response = await fetch(`${url}/api/v1/${path}`);
      const body = (await response.json()) as { status: string; data: T; error?: string };
      if (body.status !== "success") throw new Error(`prometheus /api/v1/${path}: ${body.error ?? response.status}`);
      return body.data;
    },
    async stop() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
