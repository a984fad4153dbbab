import { existsSync, readFileSync } from "node:fs";

// server/version.ts runs from the source tree (tsx) or from dist/server (the build): the package
// file is one or two levels up.
const packageFile = [new URL("../package.json", import.meta.url), new URL("../../package.json", import.meta.url)].find((u) => existsSync(u))!;

/** The package version, advertised in etcd so operators can see what each coordinator runs. */
export const ACCORD_VERSION: string = (JSON.parse(readFileSync(packageFile, "utf8")) as { version: string }).version;
