import { createHash } from "node:crypto";
import type { SQL } from "drizzle-orm";
import { PgDialect } from "drizzle-orm/pg-core";
import type { QueryResult, QueryResultRow } from "pg";
import type { Executor } from "./db.ts";

const dialect = new PgDialect();
/** Statement names by text. Bounded: the hot paths have a handful of shapes; past this, statements go unnamed. */
const names = new Map<string, string>();
const MAX_NAMES = 256;

function nameOf(label: string, text: string): string | undefined {
  const known = names.get(text);
  if (known !== undefined || names.size >= MAX_NAMES) {
    return known;
  }
  const name = `${label}_${createHash("sha1").update(text).digest("hex").slice(0, 16)}`;
  names.set(text, name);
  return name;
}

/**
 * Raw SQL as a named prepared statement: PostgreSQL parses and plans its text once per connection (and may
 * settle on a generic plan) instead of on every call, which is most of a small read's cost on the database
 * side. The name comes from the text, so each distinct shape of a statement gets its own. For reads on hot
 * paths; the rows are node-postgres's, parsed with its default type parsers.
 */
export async function executePrepared<T extends QueryResultRow>(
  exec: Executor,
  label: string,
  query: SQL,
): Promise<T[]> {
  const built = dialect.sqlToQuery(query);
  const prepared = exec._.session.prepareQuery<{
    execute: QueryResult<T>;
    all: unknown;
    values: unknown;
  }>(built, undefined, nameOf(label, built.sql), false);
  const result = await prepared.execute();
  return result.rows;
}
