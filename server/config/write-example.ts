import { writeFileSync } from "node:fs";
import { exampleYaml } from "./docs.js";

// `npm run config:example`: rewrites docs/accord.example.yaml from the schema.
const target = new URL("../../docs/accord.example.yaml", import.meta.url);
writeFileSync(target, exampleYaml());
process.stdout.write(`wrote ${target.pathname}\n`);
