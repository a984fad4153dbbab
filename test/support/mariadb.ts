import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import mysql from "mysql2/promise";
import { startServerProcess } from "./child-process.js";
import { freePort } from "./free-port.js";

const run = promisify(execFile);

/** A throwaway MariaDB server on a free loopback port, in a temp dir that is removed on stop. */
export interface ThrowawayMariadb {
  port: number;
  /** `mysql://root@127.0.0.1:PORT/` + database */
  url(database: string): string;
  /** Stop the server (SIGTERM, as an operator would) keeping its data, to restart it later. */
  pause(): Promise<void>;
  /** Start it again on the same port and data directory. */
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export async function startMariadb(): Promise<ThrowawayMariadb> {
  const dir = await mkdtemp(join(tmpdir(), "accord-mariadb-"));
  const datadir = join(dir, "data");
  await run("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${datadir}`,
    "--user=root",
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
  ]);
  const port = await freePort();
  let halt = async () => {};

  const launch = async () => {
    halt = await startServerProcess(
      "mariadbd",
      [
        "--no-defaults",
        "--user=root",
        `--datadir=${datadir}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        `--socket=${join(dir, "s.sock")}`,
        "--character-set-server=utf8mb4",
        "--skip-log-bin",
        "--max-connections=500",
        "--max-allowed-packet=64M",
      ],
      async () => {
        const conn = await mysql.createConnection({ host: "127.0.0.1", port, user: "root" });
        await conn.end();
        return true;
      },
    );
  };

  await launch();
  return {
    port,
    url: (database) => `mysql://root@127.0.0.1:${port}/${database}`,
    pause: () => halt(),
    resume: launch,
    async stop() {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
