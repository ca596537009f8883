import { z } from "@hono/zod-openapi";
import type { Page } from "../../lib/cursor.ts";

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: "urn:orgplane:error:not_found" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({ description: "Stable snake_case error code; see docs/errors.md" }),
    request_id: z.string(),
    instance: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Malformed or invalid input",
  401: "No credential, or an invalid one",
  403: "The credential lacks the scope or role, or the organization is suspended",
  404: "Unknown id, or a resource of another organization",
  409: "Conflict with the current state",
  413: "Body larger than 1 MiB",
  415: "Body is not JSON",
  422: "Idempotency-Key reused with a different request",
  503: "A dependency is down; retry after Retry-After seconds",
};

/** The problem responses a route can return, for its OpenAPI description. */
export function errorResponses(...statuses: number[]) {
  const all = [...new Set([400, 401, 503, ...statuses])].sort();
  return Object.fromEntries(
    all.map((status) => [
      status,
      {
        description: ERROR_DESCRIPTIONS[status] ?? "Error",
        content: { "application/problem+json": { schema: ProblemSchema } },
      },
    ]),
  );
}

export const ListQuery = {
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(100)
    .default(20)
    .openapi({ description: "Page size, 1–100", example: 20 }),
  cursor: z.string().max(256).optional().openapi({ description: "The next_cursor of the previous page" }),
};

export function listOf<T extends z.ZodType>(item: T, name: string) {
  return z
    .object({
      data: z.array(item),
      has_more: z.boolean(),
      next_cursor: z.string().nullable(),
    })
    .openapi(name);
}

export function toList<T, R>(page: Page<T>, map: (item: T) => R) {
  return { data: page.data.map(map), has_more: page.hasMore, next_cursor: page.nextCursor };
}

/** Path ids are plain strings on purpose: an id of the wrong shape is a 404, never a 400. */
export function idParam(name: string, example: string) {
  return z.string().openapi({ param: { name, in: "path" }, example, description: "Resource id" });
}

export const OrgIdParams = z.object({ org_id: idParam("org_id", "org_01jd0v4n6qf9yb5c8h2m3k7x1z") });

/** Free-form JSON object with bounded size: keys ≤ 64 chars, at most 64 keys, 16 KiB serialised. */
export const BoundedJsonObject = z
  .record(z.string().min(1).max(64), z.json())
  .refine((o) => Object.keys(o).length <= 64, { message: "At most 64 keys" })
  .refine((o) => JSON.stringify(o).length <= 16_384, { message: "At most 16 KiB when serialised" })
  // PostgreSQL's jsonb stores no NUL: refused here, so even a request for an unknown id answers 400.
  .refine((o) => !JSON.stringify(o).includes("\\u0000"), { message: "may not contain NUL characters" })
  .openapi({ type: "object", additionalProperties: true });

export const Timestamp = z.iso.datetime({ offset: true });

/** Text PostgreSQL can store: no NUL character (refused before any lookup, so the answer is always 400). */
export function storableText(schema: z.ZodString) {
  return schema.refine((s) => !s.includes("\u0000"), { message: "may not contain NUL characters" });
}
