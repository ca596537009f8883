import type { JsonObject } from "../../lib/json.ts";

/**
 * Every alert type with a fixed name. `usage_<n>` exists for any threshold an organization configures
 * (1–100); 50, 75, 80, 90 and 100 are listed because `alert_emails` always shows them.
 */
export const NAMED_ALERT_TYPES = [
  "usage_50",
  "usage_75",
  "usage_80",
  "usage_90",
  "usage_100",
  "soft_limit",
  "hard_limit",
  "credits_low",
  "payment_failed",
  "usage_reset",
  "trial_ending",
  "quota_80",
  "quota_95",
] as const;
export type NamedAlertType = (typeof NAMED_ALERT_TYPES)[number];
export type UsageAlertType = `usage_${number}`;
export type AlertType = NamedAlertType | UsageAlertType;

const USAGE_TYPE = /^usage_([1-9][0-9]?|100)$/;

export function isAlertType(value: string): value is AlertType {
  return (NAMED_ALERT_TYPES as readonly string[]).includes(value) || USAGE_TYPE.test(value);
}

export function usageAlertType(threshold: number): UsageAlertType {
  return `usage_${threshold}`;
}

/** The threshold of a `usage_<n>` type, or undefined for any other type. */
export function usageThreshold(type: string): number | undefined {
  const match = USAGE_TYPE.exec(type);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** One recorded alert: at most one per organization, type and period (the table's unique constraint). */
export type Alert = {
  /** `alr_…` */
  id: string;
  orgId: string;
  type: AlertType;
  /** Start of the billing period it belongs to. */
  periodStart: Date;
  /** The figures it was raised with (used, limit, threshold…), shown in its email and the API. */
  details: JsonObject;
  createdAt: Date;
  /** When its emails were put in the mail outbox; null until the delivery job has run. */
  sentAt: Date | null;
};

/** Who an alert email goes to. */
export type AlertRecipients = {
  orgName: string;
  orgDisplayName: string | null;
  billingEmail: string | null;
  /** Emails of the owners and billing members (users without an email are skipped). */
  memberEmails: string[];
};
