import { z } from "zod";
import type { Catalog, PlanDefinition } from "./catalog.types.ts";

/**
 * orgplane.yaml, as zod validates it. Imports nothing but zod (and types), so it stays in the domain:
 * the YAML reading and file positions live in src/infra/catalog-file.ts. `schemas/orgplane.schema.json`
 * is generated from `CatalogFileSchema` (`npm run catalog-schema:generate`).
 */

/** Plan, category, meter, quota and feature keys. */
export const CATALOG_KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
const KEY_MESSAGE = "must be 1–64 lower-case letters, digits or underscores, starting with a letter";
const key = z
  .string({ error: "must be a string" })
  .regex(CATALOG_KEY_PATTERN, { error: KEY_MESSAGE })
  .describe("Stable identifier: lower-case letters, digits and underscores");
const text = (max: number) => z.string({ error: "must be a string" }).trim().min(1).max(max);
const DECIMAL_MESSAGE = "must be a decimal string";
/** Exact decimal: a string, so YAML never turns 0.1 into a float. Up to 18 digits before and after the point. */
const decimal = z
  .string({ error: DECIMAL_MESSAGE })
  .regex(/^(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$/, { error: DECIMAL_MESSAGE })
  .describe('Non-negative exact decimal written as a string, e.g. "1000" or "0.25"');
const count = z
  .number({ error: "must be a whole number" })
  .int({ error: "must be a whole number" })
  .min(0, { error: "must be 0 or more" })
  .max(Number.MAX_SAFE_INTEGER);

export const CategorySchema = z.strictObject({
  key,
  description: text(500).optional(),
});

export const MeterSchema = z.strictObject({
  key,
  unit: text(32).describe("What one unit is: request, token, byte, mb, minute…"),
  description: text(500).optional(),
  aggregation: z
    .enum(["sum", "count", "max", "last", "unique_count"], {
      error: "must be sum, count, max, last or unique_count",
    })
    .default("sum")
    .describe(
      "How events combine: sum of values, count of events, largest value, latest value (a gauge), distinct values",
    ),
  cost_per_unit: decimal.optional().describe("What one unit costs, in usage_currency (major units)"),
  benchmark_cost_per_unit: decimal
    .optional()
    .describe("What one unit would cost on the benchmark (e.g. a reference model); savings = benchmark − cost"),
  quota: key.optional().describe("The product-owned quota this meter's use counts against"),
});

export const PriceSchema = z.strictObject({
  amount_minor: count.describe("Integer minor units (cents)"),
  currency: z
    .string({ error: "must be a string" })
    .regex(/^[a-z]{3}$/, { error: "must be a lower-case ISO 4217 code such as usd" }),
  interval: z.enum(["month", "year"], { error: "must be month or year" }),
});

export const PlanSchema = z.strictObject({
  key,
  name: text(100),
  tier: text(64).describe("The platform's own tier label, e.g. pro, GROWTH, Ship"),
  price: PriceSchema.nullable().describe("null: free, or priced by contract"),
  trial_days: count.max(365).default(0),
  monthly_credits: decimal
    .nullable()
    .describe("Credits granted each month; null: custom, set per organization"),
  rate_limits: z
    .record(key, count.min(1, { error: "must be at least 1 request per minute" }))
    .default({})
    .describe("Requests per minute by rate-limit category"),
  quotas: z
    .record(key, count.nullable())
    .default({})
    .describe("Any named count or size (bytes); null: unlimited"),
  features: z.record(key, z.boolean({ error: "must be true or false" })).default({}),
  visibility: z.enum(["public", "private"], { error: "must be public or private" }).default("public"),
  stripe_price_id: z
    .string({ error: "must be a string" })
    .regex(/^price_[A-Za-z0-9]{1,64}$/, { error: "must be a Stripe price id (price_…)" })
    .nullable()
    .default(null),
  auto_upgrade: z
    .array(
      z.strictObject({
        when_balance_at_least: decimal.describe(
          "The credit balance a purchase must bring the organization to",
        ),
        plan: key.describe("The plan the organization moves to"),
      }),
    )
    .max(16)
    .default([])
    .describe("Move to another plan when a purchase of credits brings the balance to a threshold"),
});

/** Quotas Orgplane counts from its own tables (quotas.service.ts OWNED_QUOTAS). */
const ORGPLANE_COUNTED_QUOTAS: readonly string[] = ["members", "projects", "api_keys", "invitations"];

function duplicates(keys: readonly string[]): string[] {
  return keys.filter((k, i) => keys.indexOf(k) !== i);
}

export const CatalogFileSchema = z
  .strictObject({
    key_prefix: z
      .string({ error: "must be a string" })
      .regex(/^[a-z0-9]{1,16}$/, { error: "must be 1–16 lower-case letters or digits" })
      .nullable()
      .default(null)
      .describe("The organization API key prefix this product uses (informational; KEY_PREFIX sets it)"),
    rate_limit_categories: z.array(CategorySchema).max(32).default([]),
    meters: z.array(MeterSchema).max(64).default([]),
    credit_costs: z.record(key, decimal).default({}).describe("Credits per unit of each meter"),
    usage_currency: z
      .string({ error: "must be a string" })
      .regex(/^[a-z]{3}$/, { error: "must be a lower-case ISO 4217 code such as usd" })
      .default("usd")
      .describe("The currency of the meters' cost_per_unit"),
    plans: z.array(PlanSchema).min(1, { error: "must list at least one plan" }).max(100),
    credit_price: z
      .strictObject({
        amount: decimal
          .refine((v) => /[1-9]/.test(v), { error: "must be greater than 0" })
          .describe("Price of one credit in major units, e.g. 0.002"),
        currency: z
          .string({ error: "must be a string" })
          .regex(/^[a-z]{3}$/, { error: "must be a lower-case ISO 4217 code such as usd" }),
      })
      .optional()
      .describe(
        "What one credit costs; lets organizations whose currency it is set spending limits in currency",
      ),
    default_plan: key.describe("The plan a new organization starts on"),
    fallback_plan: key.describe("The plan an organization falls back to when a cancellation takes effect"),
  })
  .superRefine((file, ctx) => {
    const categories = file.rate_limit_categories.map((c) => c.key);
    const meters = file.meters.map((m) => m.key);
    const plans = file.plans.map((p) => p.key);
    for (const [list, keys] of [
      ["rate_limit_categories", categories],
      ["meters", meters],
      ["plans", plans],
    ] as const) {
      for (const dup of new Set(duplicates(keys))) {
        const index = keys.lastIndexOf(dup);
        ctx.addIssue({ code: "custom", path: [list, index, "key"], message: `'${dup}' is used twice` });
      }
    }
    for (const meter of Object.keys(file.credit_costs)) {
      if (!meters.includes(meter)) {
        ctx.addIssue({ code: "custom", path: ["credit_costs", meter], message: `names no meter '${meter}'` });
      }
    }
    file.meters.forEach((meter, i) => {
      if (meter.quota !== undefined && ORGPLANE_COUNTED_QUOTAS.includes(meter.quota)) {
        ctx.addIssue({
          code: "custom",
          path: ["meters", i, "quota"],
          message: `'${meter.quota}' is counted by Orgplane itself; a meter cannot count against it`,
        });
      }
      if (meter.aggregation === "unique_count" && file.credit_costs[meter.key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["credit_costs", meter.key],
          message: "a unique_count meter has no value to price",
        });
      }
    });
    file.plans.forEach((plan, i) => {
      for (const category of Object.keys(plan.rate_limits)) {
        if (!categories.includes(category)) {
          ctx.addIssue({
            code: "custom",
            path: ["plans", i, "rate_limits", category],
            message: `names no rate-limit category '${category}'`,
          });
        }
      }
    });
    file.plans.forEach((plan, i) => {
      plan.auto_upgrade.forEach((rule, j) => {
        if (!plans.includes(rule.plan) || rule.plan === plan.key) {
          ctx.addIssue({
            code: "custom",
            path: ["plans", i, "auto_upgrade", j, "plan"],
            message: rule.plan === plan.key ? "names the plan itself" : `names no plan '${rule.plan}'`,
          });
        }
      });
    });
    for (const field of ["default_plan", "fallback_plan"] as const) {
      if (!plans.includes(file[field])) {
        ctx.addIssue({ code: "custom", path: [field], message: `names no plan '${file[field]}'` });
      }
    }
  });

export type CatalogFile = z.infer<typeof CatalogFileSchema>;

export function toPlanDefinition(plan: CatalogFile["plans"][number]): PlanDefinition {
  return {
    key: plan.key,
    name: plan.name,
    tier: plan.tier,
    price:
      plan.price === null
        ? null
        : {
            amountMinor: plan.price.amount_minor,
            currency: plan.price.currency,
            interval: plan.price.interval,
          },
    trialDays: plan.trial_days,
    monthlyCredits: plan.monthly_credits,
    rateLimits: plan.rate_limits,
    quotas: plan.quotas,
    features: plan.features,
    visibility: plan.visibility,
    stripePriceId: plan.stripe_price_id,
    ...(plan.auto_upgrade.length === 0
      ? {}
      : {
          autoUpgrade: plan.auto_upgrade.map((r) => ({
            whenBalanceAtLeast: r.when_balance_at_least,
            plan: r.plan,
          })),
        }),
  };
}

/** The validated file as the domain's Catalog. */
export function toCatalog(file: CatalogFile, preset: string | null): Catalog {
  return {
    preset,
    keyPrefix: file.key_prefix,
    categories: file.rate_limit_categories.map((c) => ({ key: c.key, description: c.description ?? "" })),
    meters: file.meters.map((m) => ({
      key: m.key,
      unit: m.unit,
      description: m.description ?? "",
      aggregation: m.aggregation,
      costPerUnit: m.cost_per_unit ?? null,
      benchmarkCostPerUnit: m.benchmark_cost_per_unit ?? null,
      quota: m.quota ?? null,
    })),
    creditCosts: file.credit_costs,
    usageCurrency: file.usage_currency,
    plans: file.plans.map(toPlanDefinition),
    defaultPlan: file.default_plan,
    fallbackPlan: file.fallback_plan,
    ...(file.credit_price === undefined
      ? {}
      : { creditPrice: { amount: file.credit_price.amount, currency: file.credit_price.currency } }),
  };
}
