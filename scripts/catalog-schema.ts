/**
 * Writes schemas/orgplane.schema.json, the JSON Schema editors use for orgplane.yaml, from the zod schema that
 * validates it at start (`npm run catalog-schema:generate`); with `--check`, exits 1 when the committed file
 * differs from what the zod schema generates (`npm run catalog-schema:check`, run by CI).
 */
import { z } from "zod";
import { CatalogFileSchema } from "../src/domain/catalog/catalog.schema.ts";
import { writeOrCheck } from "./generated-file.ts";

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

await writeOrCheck({ relative, generated, source: "the zod schema", script: "catalog-schema:generate" });
