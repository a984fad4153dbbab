import { readFileSync } from "node:fs";

/** The package version, advertised in etcd so operators can see what each coordinator runs. */
export const ACCORD_VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version;
