import type { JsonObject } from "../../lib/json.ts";

/**
 * The event catalog: every type Orgplane emits to an organization's webhook endpoints. docs/webhooks.md
 * documents each; OpenAPI carries one JSON schema per type (`WebhookEvent_<type>`).
 */
export const WEBHOOK_EVENT_TYPES = [
  "organization.updated",
  "organization.suspended",
  "organization.unsuspended",
  "organization.deleted",
  "member.added",
  "member.removed",
  "member.role_changed",
  "invitation.created",
  "invitation.accepted",
  "api_key.created",
  "api_key.revoked",
  "api_key.rotated",
  "api_key.expiring",
  "subscription.created",
  "subscription.updated",
  "subscription.canceled",
  "subscription.trial_ending",
  "credits.granted",
  "credits.low",
  "spending_limit.soft_reached",
  "spending_limit.hard_reached",
  "quota.warning",
  "quota.critical",
  "quota.exceeded",
  "usage.period_reset",
  "invoice.created",
  "invoice.paid",
  "invoice.payment_failed",
  "webhook.endpoint_disabled",
  "webhook.test",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export function isWebhookEventType(value: string): value is WebhookEventType {
  return (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/** One event in the outbox: written in the transaction of the change that caused it. */
export type WebhookEvent = {
  /** `evt_…`; also the `webhook-id` header of every delivery of it (the same across retries). */
  id: string;
  orgId: string;
  /** Per-organization sequence number, from 1, without gaps among committed events. */
  sequence: number;
  type: WebhookEventType;
  data: JsonObject;
  createdAt: Date;
};

/** What a caller hands to `emitWebhookEvent`; id, sequence and time are assigned there. */
export type NewWebhookEvent = {
  orgId: string;
  type: WebhookEventType;
  data: JsonObject;
};

export type WebhookEndpoint = {
  /** `whe_…` */
  id: string;
  orgId: string;
  url: string;
  description: string | null;
  /** Empty: every type. */
  eventTypes: WebhookEventType[];
  isActive: boolean;
  /** `whsec_…` + base64 of 32 random bytes; shown once (at create and at rotation). */
  secret: string;
  /** The secret before the last rotation, still signed with until `previousSecretExpiresAt`. */
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  /** Set when the endpoint was disabled for failing continuously (`DISABLE_AFTER_MS`); cleared on re-enable. */
  disabledAt: Date | null;
  disabledReason: string | null;
  /** The first failed attempt since the last success; null while it succeeds. */
  failingSince: Date | null;
  createdAt: Date;
  updatedAt: Date;
};

export type DeliveryState = "pending" | "delivered" | "failed";

/** One event owed to one endpoint, with its attempts so far. */
export type WebhookDelivery = {
  /** `whd_…` */
  id: string;
  orgId: string;
  endpointId: string;
  eventId: string;
  eventType: WebhookEventType;
  state: DeliveryState;
  /** Attempts made so far (0 until the first). */
  attempts: number;
  /** When the next attempt is due; null once delivered or failed for good. */
  nextAttemptAt: Date | null;
  lastAttemptAt: Date | null;
  /** HTTP status of the last attempt; null when none answered (timeout, refused, blocked). */
  responseStatus: number | null;
  /** Milliseconds the last attempt took. */
  latencyMs: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
};

/**
 * Delay before each attempt, from the commit: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after
 * the previous failure (Standard Webhooks' reference schedule). After the last, the delivery is `failed`.
 */
export const RETRY_SCHEDULE_MS = [
  0,
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
] as const;

/** An endpoint failing every attempt for this long is disabled (its owners are emailed). */
export const DISABLE_AFTER_MS = 5 * 24 * 3_600_000;
/** One attempt waits this long for an answer. */
export const ATTEMPT_TIMEOUT_MS = 15_000;
