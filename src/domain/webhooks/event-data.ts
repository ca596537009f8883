import type { Clock } from "../../lib/clock.ts";
import type { JsonObject, JsonValue } from "../../lib/json.ts";
import type { Alert } from "../alerts/alerts.types.ts";
import type { ApiKey } from "../api-keys/api-keys.types.ts";
import type { AuditChanges } from "../audit/audit.types.ts";
import type { Role } from "../auth/principal.ts";
import type { Invitation } from "../invitations/invitations.types.ts";
import type { Organization } from "../orgs/orgs.types.ts";
import type { Stores } from "../stores.ts";
import type { Subscription } from "../subscriptions/subscriptions.types.ts";
import { emitWebhookEvent } from "./emit.ts";
import type { WebhookEvent, WebhookEventType } from "./webhooks.types.ts";

/*
 * The `data` of every event type, in API field names (snake_case, ISO 8601 timestamps, credits as exact
 * decimal strings). docs/webhook-events.md describes each; src/http/schemas/webhook-events.ts holds the
 * matching JSON schemas, checked against these types at compile time. Every `data` names its `org_id`
 * (the envelope does not), and none ever carries a secret: no key material, token or signing secret.
 */

/** `{ field: { from, to } }` in API field names; `from` is null for a field that had no value. */
export type EventChanges = Record<string, { from: JsonValue; to: JsonValue }>;

export type OrganizationSummary = {
  id: string;
  name: string;
  display_name: string | null;
  slug: string;
  status: "active" | "suspended" | "deleted";
  billing_email: string | null;
  currency: string;
};

export type MemberSummary = {
  user_id: string;
  role: Role;
  /** null: every project. */
  project_ids: string[] | null;
};

export type InvitationSummary = {
  id: string;
  email: string;
  role: Role;
  project_ids: string[] | null;
  status: string;
  expires_at: string;
  invited_by: string | null;
};

/** A key as a receiver may see it: what it is and may do, never its hash, prefix or digits. */
export type ApiKeySummary = {
  id: string;
  name: string;
  project_id: string | null;
  environment: string;
  scopes: string[];
  expires_at: string | null;
  revoked_at: string | null;
  created_by: string | null;
  created_at: string;
  rotated_from: string | null;
};

export type SubscriptionSummary = {
  id: string;
  /** The plan's key in the catalog. */
  plan: string;
  plan_version_id: string;
  status: Subscription["status"];
  interval: Subscription["interval"];
  current_period_start: string;
  current_period_end: string;
  trial_end: string | null;
  cancel_at: string | null;
  cancel_at_period_end: boolean;
  canceled_at: string | null;
  seats: number;
  provider: "stripe" | null;
};

export type QuotaEventData = {
  org_id: string;
  quota: string;
  used: number;
  limit: number;
  /** The plan's key. */
  plan: string;
  /** 80 (warning), 95 (critical) or 100 (exceeded). */
  threshold_percent: number;
  period_start: string;
  /** The alert recorded with it (warning and critical); null for `quota.exceeded`, which has none. */
  alert_id: string | null;
};

export type InvoiceEventData = {
  org_id: string;
  /** Stripe's invoice id (`in_…`); null when the event did not carry it. */
  invoice_id: string | null;
  customer_id: string | null;
  subscription_id: string | null;
  /** Minor units of `currency` (cents); null when the event did not carry them. */
  amount_due: number | null;
  amount_paid: number | null;
  currency: string | null;
  hosted_invoice_url: string | null;
  /** When Stripe created the invoice. */
  invoice_created_at: string;
  /** The Stripe event (`evt_…` of Stripe) this was read from: what to search Stripe's dashboard by. */
  stripe_event_id: string;
};

export type WebhookEventData = {
  "organization.updated": { org_id: string; organization: OrganizationSummary; changes: EventChanges };
  "organization.suspended": {
    org_id: string;
    organization: OrganizationSummary;
    reason: string | null;
    suspended_at: string;
  };
  "organization.unsuspended": { org_id: string; organization: OrganizationSummary };
  "organization.deleted": { org_id: string; organization: OrganizationSummary; deleted_at: string };
  "member.added": {
    org_id: string;
    member: MemberSummary;
    /** How they joined: they created the organization, or accepted an invitation. */
    source: "organization_created" | "invitation";
    invitation_id: string | null;
  };
  "member.removed": {
    org_id: string;
    member: MemberSummary;
    /** true: they left themselves; false: someone removed them. */
    left: boolean;
    /** Keys they had created, revoked with their membership (each also has an `api_key.revoked`). */
    revoked_api_key_ids: string[];
  };
  "member.role_changed": {
    org_id: string;
    member: MemberSummary;
    previous_role: Role;
    changes: EventChanges;
  };
  "invitation.created": { org_id: string; invitation: InvitationSummary };
  "invitation.accepted": { org_id: string; invitation: InvitationSummary; user_id: string };
  "api_key.created": { org_id: string; api_key: ApiKeySummary };
  "api_key.revoked": {
    org_id: string;
    api_key: ApiKeySummary;
    /** `revoked`: through the API; `creator_removed`: its creator left or was removed from the organization. */
    reason: "revoked" | "creator_removed";
  };
  "api_key.rotated": {
    org_id: string;
    /** The new key. */
    api_key: ApiKeySummary;
    previous_api_key_id: string;
    /** When the previous key stops working (now, for no overlap). */
    previous_expires_at: string | null;
  };
  "api_key.expiring": { org_id: string; api_key: ApiKeySummary; expires_at: string };
  "subscription.created": { org_id: string; subscription: SubscriptionSummary };
  "subscription.updated": { org_id: string; subscription: SubscriptionSummary; changes: EventChanges };
  "subscription.canceled": { org_id: string; subscription: SubscriptionSummary; changes: EventChanges };
  "subscription.trial_ending": {
    org_id: string;
    alert_id: string;
    trial_end: string;
    trial_plan: string;
    /** `continues`: the plan goes on after the trial; `fallback`: the trial was cancelled. */
    at_trial_end: "continues" | "fallback";
    next_plan: string;
    period_start: string;
  };
  "credits.granted": {
    org_id: string;
    grant: {
      id: string;
      amount: string;
      source: string;
      priority: number;
      expires_at: string | null;
      reference: string | null;
      reason: string | null;
    };
    transaction_id: string;
    balance: string;
  };
  "credits.low": {
    org_id: string;
    alert_id: string;
    balance: string;
    allocation: string;
    /** The balance is below this share of the period's allocation. */
    percent: number;
    period_start: string;
  };
  "spending_limit.soft_reached": {
    org_id: string;
    alert_id: string;
    used: string;
    limit: string;
    period_start: string;
  };
  "spending_limit.hard_reached": {
    org_id: string;
    alert_id: string;
    used: string;
    limit: string;
    /** `block`: billable requests are now refused; `alert`: nothing is blocked. */
    action: "block" | "alert";
    period_start: string;
  };
  "quota.warning": QuotaEventData;
  "quota.critical": QuotaEventData;
  "quota.exceeded": QuotaEventData;
  "usage.period_reset": {
    org_id: string;
    period_start: string;
    period_end: string;
    /** The plan's credits granted for the new period; null: none. */
    allocation: string | null;
  };
  "invoice.created": InvoiceEventData;
  "invoice.paid": InvoiceEventData;
  "invoice.payment_failed": InvoiceEventData;
  "webhook.endpoint_disabled": {
    endpoint_id: string;
    url: string;
    failing_since: string;
    disabled_at: string;
  };
  "webhook.test": { endpoint_id: string; message: string };
};

/**
 * Emit one event of `type` with its typed data, through `stores` of the transaction that makes the change
 * (see `emitWebhookEvent`): the event commits with the change or not at all.
 */
export function emitEvent<T extends WebhookEventType>(
  stores: Pick<Stores, "webhooks">,
  orgId: string,
  type: T,
  data: WebhookEventData[T],
  clock: Clock,
): Promise<WebhookEvent> {
  return emitWebhookEvent(stores, { orgId, type, data }, clock);
}

function iso(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

/** An audit diff as event `changes`: a field created without a previous value reads `from: null`. */
export function eventChanges(changes: AuditChanges): EventChanges {
  return Object.fromEntries(
    Object.entries(changes).map(([field, change]) => [
      field,
      { from: change.from ?? null, to: change.to ?? null },
    ]),
  );
}

export function organizationSummary(org: Organization): OrganizationSummary {
  return {
    id: org.id,
    name: org.name,
    display_name: org.displayName,
    slug: org.slug,
    status: org.status,
    billing_email: org.billingEmail,
    currency: org.currency,
  };
}

export function invitationSummary(invitation: Invitation): InvitationSummary {
  return {
    id: invitation.id,
    email: invitation.email,
    role: invitation.role,
    project_ids: invitation.projectIds,
    status: invitation.status,
    expires_at: invitation.expiresAt.toISOString(),
    invited_by: invitation.invitedBy,
  };
}

export function apiKeySummary(key: ApiKey): ApiKeySummary {
  return {
    id: key.id,
    name: key.name,
    project_id: key.projectId,
    environment: key.environment,
    scopes: [...key.scopes],
    expires_at: iso(key.expiresAt),
    revoked_at: iso(key.revokedAt),
    created_by: key.createdBy,
    created_at: key.createdAt.toISOString(),
    rotated_from: key.rotatedFrom,
  };
}

export function subscriptionSummary(sub: Subscription, planKey: string): SubscriptionSummary {
  return {
    id: sub.id,
    plan: planKey,
    plan_version_id: sub.planVersionId,
    status: sub.status,
    interval: sub.interval,
    current_period_start: sub.currentPeriodStart.toISOString(),
    current_period_end: sub.currentPeriodEnd.toISOString(),
    trial_end: iso(sub.trialEnd),
    cancel_at: iso(sub.cancelAt),
    cancel_at_period_end: sub.cancelAtPeriodEnd,
    canceled_at: iso(sub.canceledAt),
    seats: sub.seats,
    provider: sub.provider,
  };
}

function text(details: JsonObject, key: string): string {
  const value = details[key];
  return typeof value === "string" ? value : value === undefined || value === null ? "" : String(value);
}

function count(details: JsonObject, key: string): number {
  const value = details[key];
  return typeof value === "number" ? value : Number(value ?? 0);
}

/**
 * The event an alert announces, recorded in the alert's transaction (once per organization, type and
 * period, as the alert). `usage_<n>`, `payment_failed` and `usage_reset` announce none: the spending
 * thresholds have no event type, a failed payment is `invoice.payment_failed` and a new period is
 * `usage.period_reset`, emitted by the rollover itself. The alert's details are written by Orgplane's
 * own code (spending evaluation, quota admission, trial sweep), so their fields are known.
 */
export async function emitAlertEvent(stores: Pick<Stores, "webhooks">, alert: Alert, clock: Clock) {
  const d = alert.details;
  const base = { org_id: alert.orgId, alert_id: alert.id, period_start: alert.periodStart.toISOString() };
  switch (alert.type) {
    case "credits_low":
      return emitEvent(
        stores,
        alert.orgId,
        "credits.low",
        {
          ...base,
          balance: text(d, "balance"),
          allocation: text(d, "allocation"),
          percent: count(d, "percent"),
        },
        clock,
      );
    case "soft_limit":
      return emitEvent(
        stores,
        alert.orgId,
        "spending_limit.soft_reached",
        { ...base, used: text(d, "used"), limit: text(d, "limit") },
        clock,
      );
    case "hard_limit":
      return emitEvent(
        stores,
        alert.orgId,
        "spending_limit.hard_reached",
        {
          ...base,
          used: text(d, "used"),
          limit: text(d, "limit"),
          action: text(d, "action") === "alert" ? "alert" : "block",
        },
        clock,
      );
    case "quota_80":
    case "quota_95":
      return emitEvent(
        stores,
        alert.orgId,
        alert.type === "quota_80" ? "quota.warning" : "quota.critical",
        {
          ...base,
          quota: text(d, "quota"),
          used: count(d, "used"),
          limit: count(d, "limit"),
          plan: text(d, "plan"),
          threshold_percent: alert.type === "quota_80" ? 80 : 95,
        },
        clock,
      );
    case "trial_ending":
      return emitEvent(
        stores,
        alert.orgId,
        "subscription.trial_ending",
        {
          ...base,
          trial_end: text(d, "trial_end"),
          trial_plan: text(d, "trial_plan"),
          at_trial_end: text(d, "at_trial_end") === "fallback" ? "fallback" : "continues",
          next_plan: text(d, "next_plan"),
        },
        clock,
      );
    default:
      return undefined;
  }
}
