import type { PlanDefinition } from "../src/domain/catalog/catalog.types.ts";

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
