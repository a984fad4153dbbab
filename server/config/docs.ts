import { stringify } from "yaml";
import { envName, flagName } from "../config.js";
import { CONFIG_SECTIONS, type ConfigOption } from "./schema.js";

// `--help` and docs/accord.example.yaml, both written from the schema's descriptions.

const WIDTH = 100;

function wrap(text: string, indent: string, width = WIDTH): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(indent + line);
  return lines;
}

const shown = (option: ConfigOption) => {
  const text = option.doc.text(option.defaultValue);
  return text === "" ? "(empty)" : text;
};

export function helpText(version: string): string {
  const out = [
    "Usage: accord [--config FILE] [--KEY VALUE | --KEY=VALUE]...",
    "       (npm start -- ARGS from the sources, node dist/server/main.js ARGS from the build)",
    "",
    `Accord ${version}, a distributed transaction coordinator (SAGA, TCC, MSG, XA).`,
    "",
    ...wrap(
      "Each key is read from, highest first: its flag, its environment variable, the --config file (YAML or JSON, " +
        "nested by section: engine.leaseMs is leaseMs under engine), its default. In env and flags a list is " +
        "comma-separated. docs/accord.example.yaml shows every key in a file.",
      "",
    ),
    "",
    "  -h, --help     Print this help and exit.",
    "  --version      Print the version and exit.",
    "  --config FILE  A YAML or JSON configuration file. Env: ACCORD_CONFIG.",
  ];
  for (const section of CONFIG_SECTIONS) {
    out.push("", ...wrap(section.name ? `${section.name}: ${section.description}` : "Top level:", ""));
    for (const option of section.options) {
      out.push(`  ${flagName(option.key)} ${option.doc.placeholder}`);
      out.push(...wrap(option.doc.description, "      "));
      out.push(`      Default: ${shown(option)}. Env: ${envName(option.key)}. File: ${option.key}.`);
      out.push(...wrap(`Takes ${option.doc.expected}.`, "      "));
    }
  }
  return `${out.join("\n")}\n`;
}

const comment = (text: string, indent: string) => wrap(text, `${indent}# `);

/** The YAML for `name: value`, indented to sit inside its section. */
function yamlEntry(name: string, value: unknown, indent: string): string[] {
  return stringify({ [name]: value })
    .trimEnd()
    .split("\n")
    .map((line) => indent + line);
}

export function exampleYaml(): string {
  const out = [
    "# Accord configuration: every key, with its default and what it means.",
    "# Generated from server/config/schema.ts by `npm run config:example`; a test keeps the two equal.",
    "#",
    ...comment(
      "Load it with --config FILE (or ACCORD_CONFIG=FILE). A key's environment variable and flag win over the " +
        "file; `npm start -- --help` lists them. Lists are YAML lists here and comma-separated in env and flags. " +
        "Keys left out take their defaults, so a real file needs only the ones it changes.",
      "",
    ),
  ];
  for (const section of CONFIG_SECTIONS) {
    const indent = section.name ? "  " : "";
    out.push("");
    if (section.name) out.push(...comment(section.description, ""), `${section.name}:`);
    section.options.forEach((option, i) => {
      if (i > 0) out.push("");
      out.push(...comment(option.doc.description, indent));
      out.push(...comment(`Takes ${option.doc.expected}. Env ${envName(option.key)}, flag ${flagName(option.key)}.`, indent));
      if (option.doc.example !== undefined) {
        out.push(`${indent}# For example:`);
        out.push(...yamlEntry(option.path.at(-1)!, option.doc.example, `${indent}#   `));
      }
      out.push(...yamlEntry(option.path.at(-1)!, option.defaultValue, indent));
    });
  }
  return `${out.join("\n")}\n`;
}
