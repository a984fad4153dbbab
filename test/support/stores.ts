import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";

/** A fresh store URL per call, for each backend, so test files never share state. */
export interface StoreBackend {
  name: "sqlite" | "mysql";
  freshUrl(): Promise<string>;
  cleanup(): Promise<void>;
}

export function sqliteBackend(): StoreBackend {
  const dirs: string[] = [];
  return {
    name: "sqlite",
    async freshUrl() {
      const dir = await mkdtemp(join(tmpdir(), "accord-sqlite-"));
      dirs.push(dir);
      return `file:${join(dir, "accord.db")}`;
    },
    async cleanup() {
      await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    },
  };
}

export function mysqlBackend(): StoreBackend {
  return {
    name: "mysql",
    async freshUrl() {
      return `mysql://root@127.0.0.1:${inject("mariadbPort")}/t_${randomBytes(6).toString("hex")}`;
    },
    async cleanup() {},
  };
}

export const backends = (): StoreBackend[] => [sqliteBackend(), mysqlBackend()];
