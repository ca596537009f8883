import { z } from "@hono/zod-openapi";
import type { PlanVersion } from "../../domain/catalog/catalog.types.ts";
import type { QuotaStatus } from "../../domain/quotas/quotas.types.ts";
import type { CurrentSubscription } from "../../domain/subscriptions/subscriptions.service.ts";
import type { Subscription } from "../../domain/subscriptions/subscriptions.types.ts";
import { Timestamp } from "./common.ts";

export const PlanSummarySchema = z
  .object({
    key: z.string().openapi({ example: "pro" }),
    version: z.number().int(),
    name: z.string(),
    tier: z.string(),
  })
  .openapi("PlanSummary");

export const SUBSCRIPTION_STATUSES = [
  "trialing",
  "active",
  "past_due",
  "unpaid",
  "paused",
  "canceled",
] as const;
const Interval = z.enum(["month", "year"]);

export const SubscriptionSchema = z
  .object({
    id: z.string().openapi({ example: "sub_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("subscription"),
    org_id: z.string(),
    plan: PlanSummarySchema,
    plan_version_id: z.string(),
    status: z.enum(SUBSCRIPTION_STATUSES),
    interval: Interval,
    billing_anchor_day: z
      .number()
      .int()
      .openapi({ description: "Day of month periods start on (1–31), clamped in short months" }),
    current_period_start: Timestamp,
    current_period_end: Timestamp,
    trial_end: Timestamp.nullable(),
    cancel_at: Timestamp.nullable(),
    cancel_at_period_end: z.boolean(),
    canceled_at: Timestamp.nullable(),
    pause_reason: z.string().nullable(),
    seats: z.number().int(),
    provider: z.enum(["stripe"]).nullable(),
    provider_customer_id: z.string().nullable(),
    provider_subscription_id: z.string().nullable(),
    last_invoice_at: Timestamp.nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("Subscription");

/** The subscription fields the organization view carries. */
export const SubscriptionSummarySchema = z
  .object({
    status: z.enum(SUBSCRIPTION_STATUSES),
    interval: Interval,
    current_period_start: Timestamp,
    current_period_end: Timestamp,
    trial_end: Timestamp.nullable(),
    cancel_at_period_end: z.boolean(),
  })
  .openapi("SubscriptionSummary");

export const QuotaSchema = z
  .object({
    quota: z.string().openapi({ example: "projects" }),
    limit: z.number().int().nullable().openapi({ description: "null: unlimited" }),
    current: z.number().int(),
    source: z.enum(["plan"]),
  })
  .openapi("Quota");

export const QuotaListSchema = z
  .object({ data: z.array(QuotaSchema), has_more: z.boolean(), next_cursor: z.string().nullable() })
  .openapi("QuotaList");

export const ChangeSubscriptionBody = z
  .strictObject({
    plan: z.string().trim().min(1).max(64).optional().openapi({
      description: "Plan key; moves to its current version now (limits and credits follow at once)",
    }),
    interval: Interval.optional().openapi({ description: "A different interval starts a new period now" }),
    seats: z.number().int().min(1).max(1_000_000).optional(),
    cancel_at_period_end: z
      .boolean()
      .optional()
      .openapi({ description: "false resumes a pending cancellation; true schedules one (like DELETE)" }),
  })
  .openapi("ChangeSubscription", {
    description: "Only the fields present change; an empty body changes nothing",
  });

export const CancelSubscriptionQuery = z.strictObject({
  immediately: z
    .enum(["true", "false"])
    .optional()
    .openapi({ description: "true: the fallback plan applies now; default: at the end of the period" }),
});

function iso(d: Date | null): string | null {
  return d === null ? null : d.toISOString();
}

export function toPlanSummary(plan: PlanVersion): z.infer<typeof PlanSummarySchema> {
  return { key: plan.key, version: plan.version, name: plan.definition.name, tier: plan.definition.tier };
}

export function toSubscriptionSummary(s: Subscription): z.infer<typeof SubscriptionSummarySchema> {
  return {
    status: s.status,
    interval: s.interval,
    current_period_start: s.currentPeriodStart.toISOString(),
    current_period_end: s.currentPeriodEnd.toISOString(),
    trial_end: iso(s.trialEnd),
    cancel_at_period_end: s.cancelAtPeriodEnd,
  };
}

export function toSubscriptionResponse({
  subscription: s,
  plan,
}: CurrentSubscription): z.infer<typeof SubscriptionSchema> {
  return {
    id: s.id,
    object: "subscription",
    org_id: s.orgId,
    plan: toPlanSummary(plan),
    plan_version_id: s.planVersionId,
    status: s.status,
    interval: s.interval,
    billing_anchor_day: s.billingAnchorDay,
    current_period_start: s.currentPeriodStart.toISOString(),
    current_period_end: s.currentPeriodEnd.toISOString(),
    trial_end: iso(s.trialEnd),
    cancel_at: iso(s.cancelAt),
    cancel_at_period_end: s.cancelAtPeriodEnd,
    canceled_at: iso(s.canceledAt),
    pause_reason: s.pauseReason,
    seats: s.seats,
    provider: s.provider,
    provider_customer_id: s.providerCustomerId,
    provider_subscription_id: s.providerSubscriptionId,
    last_invoice_at: iso(s.lastInvoiceAt),
    created_at: s.createdAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
  };
}

export function toQuotaResponse(q: QuotaStatus): z.infer<typeof QuotaSchema> {
  return { quota: q.quota, limit: q.limit, current: q.current, source: q.source };
}
