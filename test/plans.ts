import type { Catalog, PlanDefinition } from "../src/domain/catalog/catalog.types.ts";

/** A plan for a test catalog: free, public, no trial, 100 monthly credits, no limits, unless `fields` say. */
export function testPlan(key: string, fields: Partial<PlanDefinition> = {}): PlanDefinition {
  return {
    key,
    name: key,
    tier: key,
    price: null,
    trialDays: 0,
    monthlyCredits: "100",
    rateLimits: {},
    quotas: {},
    features: {},
    visibility: "public",
    stripePriceId: null,
    ...fields,
  };
}

/**
 * A test catalog of `plans`: no preset, key prefix `sk`, no meters or credit costs, and the first plan both
 * the default and the fallback, unless `fields` say otherwise.
 */
export function testCatalog(plans: PlanDefinition[], fields: Partial<Catalog> = {}): Catalog {
  const first = plans[0]?.key ?? "";
  return {
    preset: null,
    keyPrefix: "sk",
    categories: [],
    meters: [],
    creditCosts: {},
    usageCurrency: "usd",
    plans,
    defaultPlan: first,
    fallbackPlan: first,
    ...fields,
  };
}
