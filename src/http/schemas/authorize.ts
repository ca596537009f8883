import { z } from "@hono/zod-openapi";
import type { AuthorizeDecision } from "../../domain/authorize/authorize.service.ts";
import { DECIMAL_PATTERN } from "../../lib/decimal.ts";
import { rateLimitHeaders } from "../middleware/rate-limit.ts";
import { ScopeSchema } from "./api-key.ts";
import { storableText } from "./common.ts";

/** One call can count as many requests as a batch endpoint of the product serves at once. */
const MAX_COST = 1_000_000;

export const AuthorizeBody = z
  .strictObject({
    key: storableText(z.string().trim().min(1).max(256)).openapi({
      description: "The end customer's API key, as presented to the product",
    }),
    category: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,31}$/, "a category: lower-case letter, then up to 31 of a-z 0-9 _ -")
      .openapi({ description: "A rate-limit category of the catalog (e.g. `search`)", example: "search" }),
    cost: z
      .number()
      .int()
      .min(1)
      .max(MAX_COST)
      .default(1)
      .openapi({ description: "Requests this call counts as (default 1)", example: 1 }),
    scope: ScopeSchema.optional().openapi({ description: "A scope the key must hold" }),
    credits: z
      .string()
      .regex(DECIMAL_PATTERN, "must be a decimal string such as `12.5`")
      .optional()
      .openapi({
        description:
          "Credits the request needs, as an exact decimal string. Until the credit ledger exists this is " +
          "compared with the plan's monthly allocation only, and nothing is debited",
        example: "2.5",
      }),
  })
  .openapi("Authorize");

const REASONS = [
  "key_not_found",
  "key_expired",
  "key_revoked",
  "organization_suspended",
  "rate_limited",
  "insufficient_credits",
  "scope_missing",
] as const;

export const AuthorizeResultSchema = z
  .object({
    allowed: z.boolean(),
    reason: z.enum(REASONS).nullable().openapi({ description: "null when allowed" }),
    org_id: z.string().nullable(),
    project_id: z.string().nullable(),
    key_id: z.string().nullable(),
    scopes: z.array(z.string()).nullable(),
    plan: z
      .object({ key: z.string(), version: z.number().int(), tier: z.string() })
      .nullable()
      .openapi({ description: "The organization's current plan; null when the key was refused" }),
    limit: z
      .object({
        category: z.string(),
        limit: z.number().int(),
        remaining: z.number().int(),
        reset_at: z.string(),
      })
      .nullable()
      .openapi({
        description:
          "The category's limit after this call; null when the request was not counted (refused " +
          "before the limit) or the plan does not limit the category",
      }),
    credits: z
      .object({ required: z.string(), monthly_allocation: z.string().nullable() })
      .nullable()
      .openapi({
        description:
          "Set when `credits` was given. `monthly_allocation` is the plan's monthly credits (null: custom, " +
          "never refused); no ledger exists yet, so nothing is debited",
      }),
    headers: z.record(z.string(), z.string()).openapi({
      description:
        "Rate-limit headers to forward to the end user: RateLimit-Policy, RateLimit, X-RateLimit-Limit, " +
        "X-RateLimit-Remaining, X-RateLimit-Reset, and Retry-After when rate limited. Empty when the " +
        "request was not counted",
    }),
  })
  .openapi("AuthorizeResult");

export function toAuthorizeResult(d: AuthorizeDecision): z.infer<typeof AuthorizeResultSchema> {
  const headers: Record<string, string> = {};
  if (d.limit !== undefined) {
    for (const [name, value] of rateLimitHeaders(d.limit)) {
      headers[name] = value;
    }
    if (!d.limit.decision.allowed) {
      headers["Retry-After"] = String(Math.max(1, Math.ceil(d.limit.decision.retryAfterSeconds)));
    }
  }
  return {
    allowed: d.allowed,
    reason: d.reason,
    org_id: d.key?.orgId ?? null,
    project_id: d.key?.projectId ?? null,
    key_id: d.key?.id ?? null,
    scopes: d.key?.scopes ?? null,
    plan:
      d.plan === undefined
        ? null
        : { key: d.plan.key, version: d.plan.version, tier: d.plan.definition.tier },
    limit:
      d.limit === undefined
        ? null
        : {
            category: d.limit.category,
            limit: d.limit.limit,
            remaining: d.limit.decision.remaining,
            reset_at: d.limit.decision.resetAt.toISOString(),
          },
    credits:
      d.credits === undefined
        ? null
        : { required: d.credits.required, monthly_allocation: d.credits.monthlyAllocation },
    headers,
  };
}
