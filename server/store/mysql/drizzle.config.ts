import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "mysql",
  schema: "./server/store/mysql/schema.ts",
  out: "./server/store/mysql/migrations",
});
