import { z } from "@hono/zod-openapi";
import type { PlanVersion } from "../../domain/catalog/catalog.types.ts";

export const PlanSchema = z
  .object({
    object: z.literal("plan"),
    id: z.string().openapi({ description: "This version's id", example: "pln_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    key: z.string().openapi({ description: "The plan's key, stable across versions", example: "pro" }),
    version: z.number().int().openapi({ description: "1 for the first version; editing the plan adds one" }),
    name: z.string(),
    tier: z.string().openapi({ description: "The platform's tier label", example: "pro" }),
    price: z
      .object({
        amount_minor: z.number().int().openapi({ description: "Minor units (cents)" }),
        currency: z.string().openapi({ example: "usd" }),
        interval: z.enum(["month", "year"]),
      })
      .nullable()
      .openapi({ description: "null: free, or priced by contract" }),
    trial_days: z.number().int(),
    monthly_credits: z
      .string()
      .nullable()
      .openapi({ description: "Exact decimal; null: custom, set per organization", example: "100000" }),
    rate_limits: z
      .record(z.string(), z.number().int())
      .openapi({ description: "Requests per minute by rate-limit category" }),
    quotas: z
      .record(z.string(), z.number().int().nullable())
      .openapi({ description: "Named counts and sizes; null: unlimited" }),
    features: z.record(z.string(), z.boolean()),
    visibility: z.enum(["public", "private"]),
    stripe_price_id: z.string().nullable(),
    is_current: z
      .boolean()
      .openapi({ description: "False for an older version, or a plan no longer in the catalog" }),
    created_at: z.string().openapi({ format: "date-time" }),
  })
  .openapi("Plan");

export function toPlanResponse(plan: PlanVersion): z.infer<typeof PlanSchema> {
  const d = plan.definition;
  return {
    object: "plan",
    id: plan.id,
    key: plan.key,
    version: plan.version,
    name: d.name,
    tier: d.tier,
    price:
      d.price === null
        ? null
        : { amount_minor: d.price.amountMinor, currency: d.price.currency, interval: d.price.interval },
    trial_days: d.trialDays,
    monthly_credits: d.monthlyCredits,
    rate_limits: d.rateLimits,
    quotas: d.quotas,
    features: d.features,
    visibility: d.visibility,
    stripe_price_id: d.stripePriceId,
    is_current: plan.isCurrent,
    created_at: plan.createdAt.toISOString(),
  };
}
