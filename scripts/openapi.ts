/**
 * Writes openapi/openapi.json from the routes (`npm run openapi:generate`); with `--check`, exits 1 when the
 * committed file differs from what the routes generate (`npm run openapi:check`, run by CI).
 */
import { buildApi, openApiDocument } from "../src/http/api.ts";
import { writeOrCheck } from "./generated-file.ts";

await writeOrCheck({
  relative: "openapi/openapi.json",
  generated: `${JSON.stringify(openApiDocument(buildApi()), null, 2)}\n`,
  source: "the routes",
  script: "openapi:generate",
});
