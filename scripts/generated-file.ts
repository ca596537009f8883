/**
 * Generated files committed to the repository (OpenAPI, the catalog's JSON Schema): write them, or with
 * `--check` exit 1 naming the first differing line when the committed copy is stale.
 */
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export async function writeOrCheck(options: {
  /** Repository-relative path, e.g. `openapi/openapi.json`. */
  relative: string;
  generated: string;
  /** What the file is generated from, for the stale message ("the routes"). */
  source: string;
  /** The npm script that regenerates it. */
  script: string;
}): Promise<void> {
  const { relative, generated, source, script } = options;
  const target = fileURLToPath(new URL(`../${relative}`, import.meta.url));
  if (!process.argv.includes("--check")) {
    await writeFile(target, generated);
    console.log(`wrote ${relative}`);
    return;
  }
  const committed = await readFile(target, "utf8").catch(() => undefined);
  if (committed === undefined) {
    console.error(`${relative} is missing: run 'npm run ${script}' and commit it.`);
    process.exit(1);
  }
  if (committed !== generated) {
    const committedLines = committed.split("\n");
    const generatedLines = generated.split("\n");
    const line = generatedLines.findIndex((l, i) => l !== committedLines[i]);
    console.error(
      `${relative} is stale: it differs from what ${source} generate (first at line ${line + 1}).\n` +
        `  committed: ${committedLines[line]?.trim() ?? "(end of file)"}\n` +
        `  generated: ${generatedLines[line]?.trim() ?? "(end of file)"}\n` +
        `Run 'npm run ${script}' and commit the result.`,
    );
    process.exit(1);
  }
  console.log(`${relative} is up to date.`);
}
