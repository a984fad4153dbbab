import type { TestProject } from "vitest/node";
import { startMariadb } from "./mariadb.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** Port of the MariaDB shared by the test files; each file uses its own database in it. */
    mariadbPort: number;
  }
}

/** One throwaway MariaDB for the whole run; suites that need to stop it start their own. */
export default async function setup(project: TestProject) {
  const mariadb = await startMariadb();
  project.provide("mariadbPort", mariadb.port);
  return () => mariadb.stop();
}
