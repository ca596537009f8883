import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { isNode, LineCounter, parseDocument } from "yaml";
import { CatalogFileSchema, toCatalog } from "../domain/catalog/catalog.schema.ts";
import type { Catalog } from "../domain/catalog/catalog.types.ts";

/** The presets shipped in presets/<name>.yaml; each reproduces one reference platform's plans. */
export const PRESETS = ["multimodal-search", "llm-router", "managed-postgres", "rag-search"] as const;
export type PresetName = (typeof PRESETS)[number];
export const DEFAULT_PRESET: PresetName = "multimodal-search";

export const PRESETS_DIR = fileURLToPath(new URL("../../presets/", import.meta.url));

/** A catalog file is configuration: a megabyte is far beyond any real one, and bounds the parse. */
const MAX_FILE_BYTES = 1024 * 1024;

/** A catalog that cannot be used; the message is one line naming the file, line, column and the problem. */
export class CatalogError extends Error {
  override name = "CatalogError";
}

export function isPresetName(name: string): name is PresetName {
  return (PRESETS as readonly string[]).includes(name);
}

export function presetPath(name: PresetName): string {
  return `${PRESETS_DIR}${name}.yaml`;
}

/** `plans[1].monthly_credits` */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : `${out === "" ? "" : "."}${String(part)}`;
  }
  return out;
}

function fail(file: string, line: number, col: number, message: string): never {
  throw new CatalogError(`invalid catalog ${file}:${line}:${col}: ${message.replace(/\s+/g, " ").trim()}`);
}

/**
 * Parse and validate orgplane.yaml text. `file` names it in errors. A mistake throws a CatalogError whose
 * message points at the line and column of the offending value (or of the nearest enclosing one when the
 * value is missing).
 */
export function parseCatalog(source: string, file: string, preset: string | null = null): Catalog {
  const lineCounter = new LineCounter();
  const doc = parseDocument(source, { lineCounter, prettyErrors: true, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax !== undefined) {
    const pos = syntax.linePos?.[0] ?? { line: 1, col: 1 };
    fail(
      file,
      pos.line,
      pos.col,
      (syntax.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, ""),
    );
  }
  const parsed = CatalogFileSchema.safeParse(doc.toJS({ maxAliasCount: 100 }) ?? {});
  if (parsed.success) {
    return toCatalog(parsed.data, preset);
  }
  const issue = parsed.error.issues[0];
  const path = issue?.path ?? [];
  // The deepest node that exists along the path: the value itself, or the mapping it is missing from.
  let offset = 0;
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range !== undefined && node.range !== null) {
      offset = node.range[0];
      break;
    }
  }
  const pos = lineCounter.linePos(offset);
  const where = formatPath(path);
  // zod reports a missing field as a value of the wrong type; the document says which it is.
  const missing = issue?.code === "invalid_type" && path.length > 0 && !doc.hasIn(path);
  const message = missing ? "is required" : (issue?.message ?? "is invalid");
  fail(file, pos.line, pos.col, where === "" ? message : `${where} ${message}`);
}

/** Read and validate a catalog file. */
export async function loadCatalogFile(path: string, preset: string | null = null): Promise<Catalog> {
  let source: string;
  try {
    const buffer = await readFile(path);
    if (buffer.byteLength > MAX_FILE_BYTES) {
      throw new CatalogError(`invalid catalog ${path}: larger than ${MAX_FILE_BYTES} bytes`);
    }
    source = buffer.toString("utf8");
  } catch (err) {
    if (err instanceof CatalogError) {
      throw err;
    }
    const reason = err instanceof Error && "code" in err ? String(err.code) : String(err);
    throw new CatalogError(`cannot read catalog ${path}: ${reason}`);
  }
  return parseCatalog(source, path, preset);
}

export function loadPreset(name: PresetName): Promise<Catalog> {
  return loadCatalogFile(presetPath(name), name);
}

/** ORGPLANE_CONFIG wins; else ORGPLANE_PRESET; else the default preset. */
export function loadConfiguredCatalog(choice: {
  configFile: string | undefined;
  preset: PresetName;
}): Promise<Catalog> {
  return choice.configFile === undefined ? loadPreset(choice.preset) : loadCatalogFile(choice.configFile);
}
