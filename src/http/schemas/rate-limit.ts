import { z } from "@hono/zod-openapi";
import type { EffectiveLimit } from "../../domain/rate-limits/rate-limits.types.ts";

/** Rate-limit categories are short identifiers; 32 of them cover every preset's catalog. */
const MAX_CATEGORIES = 32;
/** 10M/min (~170k/s) is above what one deployment can serve; anything larger is a typo (as for keys). */
const MAX_REQUESTS_PER_MINUTE = 10_000_000;

export const RateLimitChangesBody = z
  .record(
    z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,31}$/, "a category: lower-case letter, then up to 31 of a-z 0-9 _ -"),
    z.number().int().min(1).max(MAX_REQUESTS_PER_MINUTE).nullable(),
  )
  .refine((o) => Object.keys(o).length <= MAX_CATEGORIES, { message: `At most ${MAX_CATEGORIES} categories` })
  .openapi("RateLimitChanges", {
    description:
      "Requests per minute by category; null removes the override (the plan's limit applies again). " +
      "Categories not named are left as they are; a category the catalog lacks is a 400.",
    example: { search: 600, upload: null },
  });

/** The same object PATCH /v1/organization takes as `rate_limits`, so one body shape serves both. */
export const UpdateRateLimitsBody = z
  .strictObject({ rate_limits: RateLimitChangesBody })
  .openapi("UpdateRateLimits");

export const RateLimitsQuery = z.strictObject({
  project_id: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .optional()
    .openapi({
      param: { name: "project_id", in: "query" },
      description: "Show or change one project's overrides instead of the organization's",
    }),
});

export const RateLimitSchema = z
  .object({
    category: z.string(),
    requests_per_minute: z.number().int(),
    window_seconds: z.number().int(),
    source: z.enum(["plan", "org", "project", "key"]).openapi({
      description: "The layer the limit comes from; the most specific wins: key > project > org > plan",
    }),
  })
  .openapi("RateLimit");

export const RateLimitListSchema = z
  .object({ data: z.array(RateLimitSchema), has_more: z.boolean(), next_cursor: z.string().nullable() })
  .openapi("RateLimitList");

export function toRateLimitList(limits: EffectiveLimit[], windowSeconds: number) {
  return {
    data: limits.map((l) => ({
      category: l.category,
      requests_per_minute: l.requestsPerMinute,
      window_seconds: windowSeconds,
      source: l.source,
    })),
    has_more: false,
    next_cursor: null,
  };
}
