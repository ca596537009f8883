/**
 * Writes schemas/orgplane.schema.json, the JSON Schema editors use for orgplane.yaml, from the zod schema that
 * validates it at start (`npm run catalog-schema:generate`); with `--check`, exits 1 when the committed file
 * differs from what the zod schema generates (`npm run catalog-schema:check`, run by CI).
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { CatalogFileSchema } from "../src/domain/catalog/catalog.schema.ts";

const target = fileURLToPath(new URL("../schemas/orgplane.schema.json", import.meta.url));
const relative = "schemas/orgplane.schema.json";
// `input`: what a person writes, so fields with defaults are optional. Cross-checks (plan keys, categories)
// cannot be expressed in JSON Schema; start-up reports them with the line of the mistake.
const schema = {
  ...z.toJSONSchema(CatalogFileSchema, { io: "input", target: "draft-2020-12" }),
  $id: "https://orgplane.dev/schemas/orgplane.schema.json",
  title: "orgplane.yaml",
  description:
    "Orgplane's catalog: rate-limit categories, meters, credit costs and plans. See docs/presets/README.md.",
};
const generated = `${JSON.stringify(schema, null, 2)}\n`;

if (process.argv.includes("--check")) {
  const committed = await readFile(target, "utf8").catch(() => undefined);
  if (committed === undefined) {
    console.error(`${relative} is missing: run 'npm run catalog-schema:generate' and commit it.`);
    process.exit(1);
  }
  if (committed !== generated) {
    const committedLines = committed.split("\n");
    const generatedLines = generated.split("\n");
    const line = generatedLines.findIndex((l, i) => l !== committedLines[i]);
    console.error(
      `${relative} is stale: it differs from what the zod schema generates (first at line ${line + 1}).\n` +
        `  committed: ${committedLines[line]?.trim() ?? "(end of file)"}\n` +
        `  generated: ${generatedLines[line]?.trim() ?? "(end of file)"}\n` +
        "Run 'npm run catalog-schema:generate' and commit the result.",
    );
    process.exit(1);
  }
  console.log(`${relative} is up to date.`);
} else {
  await writeFile(target, generated);
  console.log(`wrote ${relative}`);
}
