import { AppError } from "./errors.ts";
import { type IdPrefix, isId } from "./ids.ts";

/**
 * Opaque pagination cursors. A cursor names the last id of the previous page; it is base64url JSON so
 * clients cannot be tempted to build one by hand, and a tampered cursor is a 400, never a 500.
 */
export function encodeCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ after: lastId }), "utf8").toString("base64url");
}

/** The id a cursor names; it must be an id of the listed collection (`prefix`), else the cursor is a 400. */
export function decodeCursor(cursor: string | undefined, prefix: IdPrefix): string | undefined {
  if (cursor === undefined) {
    return undefined;
  }
  const invalid = new AppError("invalid_cursor", "The cursor is not one this API returned");
  // Ids are at most ~40 characters; a cursor longer than this was not made here.
  if (cursor.length > 256 || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid;
  }
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    if (
      typeof parsed === "object" &&
      parsed !== null &&
      "after" in parsed &&
      typeof parsed.after === "string" &&
      isId(prefix, parsed.after)
    ) {
      return parsed.after;
    }
  } catch {
    throw invalid;
  }
  throw invalid;
}

export type Page<T> = { data: T[]; hasMore: boolean; nextCursor: string | null };

/** Turn `limit + 1` rows fetched in id order into a page. */
export function toPage<T extends { id: string }>(rows: T[], limit: number): Page<T> {
  const hasMore = rows.length > limit;
  const data = hasMore ? rows.slice(0, limit) : rows;
  const last = data.at(-1);
  return { data, hasMore, nextCursor: hasMore && last ? encodeCursor(last.id) : null };
}
