/**
 * Writes openapi/openapi.json from the routes (`npm run openapi:generate`); with `--check`, exits 1 when the
 * committed file differs from what the routes generate (`npm run openapi:check`, run by CI).
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { buildApi, openApiDocument } from "../src/http/api.ts";

const target = fileURLToPath(new URL("../openapi/openapi.json", import.meta.url));
const relative = "openapi/openapi.json";
const generated = `${JSON.stringify(openApiDocument(buildApi()), null, 2)}\n`;

if (process.argv.includes("--check")) {
  const committed = await readFile(target, "utf8").catch(() => undefined);
  if (committed === undefined) {
    console.error(`${relative} is missing: run 'npm run openapi:generate' and commit it.`);
    process.exit(1);
  }
  if (committed !== generated) {
    const committedLines = committed.split("\n");
    const generatedLines = generated.split("\n");
    const line = generatedLines.findIndex((l, i) => l !== committedLines[i]);
    console.error(
      `${relative} is stale: it differs from what the routes generate (first at line ${line + 1}).\n` +
        `  committed: ${committedLines[line]?.trim() ?? "(end of file)"}\n` +
        `  generated: ${generatedLines[line]?.trim() ?? "(end of file)"}\n` +
        "Run 'npm run openapi:generate' and commit the result.",
    );
    process.exit(1);
  }
  console.log(`${relative} is up to date.`);
} else {
  await writeFile(target, generated);
  console.log(`wrote ${relative}`);
}
