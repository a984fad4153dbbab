// The build emits JavaScript only; the SQL migrations the store applies at start go beside it.
import { cpSync } from "node:fs";

for (const dialect of ["sqlite", "mysql"]) {
  cpSync(`server/store/${dialect}/migrations`, `dist/server/store/${dialect}/migrations`, { recursive: true });
}
