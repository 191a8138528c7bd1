// Parses an AsyncAPI document with the AsyncAPI Initiative's own parser (the spec's
// JSON Schema and its rules); prints each error and warning, exits 1 on an error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const { document, diagnostics } = await new Parser().parse(readFileSync(process.argv[2], "utf8"));
const shown = diagnostics.filter((d) => d.severity <= 1);
for (const d of shown) {
  console.log(`${d.severity === 0 ? "error" : "warning"} ${d.code} ${d.path.join(".")}: ${d.message}`);
}
if (document) {
  console.log(`parsed: ${document.channels().length} channels, ${document.messages().length} messages`);
}
process.exit(!document || shown.some((d) => d.severity === 0) ? 1 : 0);
