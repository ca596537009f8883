import { z } from "@hono/zod-openapi";
import type { AlertEmails } from "../../domain/alerts/alerts.service.ts";
import { type Alert, NAMED_ALERT_TYPES } from "../../domain/alerts/alerts.types.ts";
import { ListQuery, Timestamp } from "./common.ts";

export const AlertSchema = z
  .object({
    id: z.string().openapi({ example: "alr_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("alert"),
    org_id: z.string(),
    type: z.string().openapi({
      description: `One of ${NAMED_ALERT_TYPES.join(", ")}, or usage_<n> of a custom threshold`,
      example: "usage_90",
    }),
    period_start: Timestamp.openapi({ description: "Start of the billing period the alert belongs to" }),
    details: z.record(z.string(), z.unknown()).openapi({
      description: "The figures it fired with (e.g. used, base, threshold, limit)",
    }),
    created_at: Timestamp,
    sent_at: Timestamp.nullable().openapi({
      description: "When its emails were put in the mail outbox; null until delivered",
    }),
  })
  .openapi("Alert");

const AlertEmailsSchema = z.record(z.string(), Timestamp.nullable()).openapi({
  description:
    "Current period: alert type → when its email was sent, null when it has not fired (or is not yet sent). " +
    "Every named type is listed, plus usage_<n> of custom thresholds that fired.",
  example: {
    soft_limit: null,
    hard_limit: null,
    payment_failed: null,
    usage_reset: null,
    usage_50: "2026-11-12T08:00:00.000Z",
  },
});

export const AlertListSchema = z
  .object({
    period_start: Timestamp.openapi({ description: "Start of the organization's current billing period" }),
    alert_emails: AlertEmailsSchema,
    data: z.array(AlertSchema),
    has_more: z.boolean(),
    next_cursor: z.string().nullable(),
  })
  .openapi("AlertList");

export const AlertsQuery = z.strictObject({ ...ListQuery });

export function toAlertResponse(a: Alert): z.infer<typeof AlertSchema> {
  return {
    id: a.id,
    object: "alert",
    org_id: a.orgId,
    type: a.type,
    period_start: a.periodStart.toISOString(),
    details: a.details,
    created_at: a.createdAt.toISOString(),
    sent_at: a.sentAt === null ? null : a.sentAt.toISOString(),
  };
}

export function toAlertEmails(emails: AlertEmails): Record<string, string | null> {
  return Object.fromEntries(
    Object.entries(emails.sent).map(([type, at]) => [type, at === null ? null : at.toISOString()]),
  );
}
