import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { ROLES } from "../../domain/auth/principal.ts";
import type { WebhookEventData } from "../../domain/webhooks/event-data.ts";
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "../../domain/webhooks/webhooks.types.ts";
import type { JsonValue } from "../../lib/json.ts";
import type { AppEnv } from "../env.ts";
import { Timestamp } from "./common.ts";

/*
 * The event catalog as JSON schemas: one envelope per type (`WebhookEvent_<type>`), each with that type's
 * `data`, in the OpenAPI document's components and its OpenAPI 3.1 `webhooks` section. The shapes are
 * checked at compile time against the domain's `WebhookEventData` (both ways), so what is emitted and what
 * is documented cannot drift apart. docs/webhook-events.md is the prose version. The objects are open (no
 * `additionalProperties: false`): a field may be added to a type without a new version, and receivers
 * ignore what they do not know.
 */

const Id = z.string();
const Decimal = z.string().openapi({ description: "Exact decimal string", example: "1250.5" });
const Role = z.enum(ROLES);
const ProjectIds = z
  .array(z.string())
  .nullable()
  .openapi({ description: "The projects the member may act in; null: every project" });

/**
 * Any JSON value. Not `z.json()`: the OpenAPI generator recurses into that recursive schema without end. The
 * values come from JSON (the outbox's jsonb), so the narrower type claims nothing unchecked.
 */
const AnyJson = z.unknown().openapi({ description: "Any JSON value" }) as unknown as z.ZodType<JsonValue>;

const Changes = z
  .record(z.string(), z.object({ from: AnyJson, to: AnyJson }))
  .openapi("WebhookEventChanges", {
    description: "Each changed field (API field names) with its value before and after; `from` null: unset",
    example: { billing_email: { from: null, to: "billing@acme.test" } },
  });

const Organization = z
  .strictObject({
    id: Id,
    name: z.string(),
    display_name: z.string().nullable(),
    slug: z.string(),
    status: z.enum(["active", "suspended", "deleted"]),
    billing_email: z.string().nullable(),
    currency: z.string(),
  })
  .openapi("WebhookEventOrganization", { description: "The organization after the change" });

const Member = z
  .strictObject({ user_id: Id, role: Role, project_ids: ProjectIds })
  .openapi("WebhookEventMember");

const Invitation = z
  .strictObject({
    id: Id,
    email: z.string(),
    role: Role,
    project_ids: ProjectIds,
    status: z.string(),
    expires_at: Timestamp,
    invited_by: z.string().nullable(),
  })
  .openapi("WebhookEventInvitation", { description: "The invitation; its token is never sent" });

const ApiKey = z
  .strictObject({
    id: Id,
    name: z.string(),
    project_id: z.string().nullable(),
    environment: z.string(),
    scopes: z.array(z.string()),
    expires_at: Timestamp.nullable(),
    revoked_at: Timestamp.nullable(),
    created_by: z.string().nullable(),
    created_at: Timestamp,
    rotated_from: z.string().nullable(),
  })
  .openapi("WebhookEventApiKey", {
    description: "The key's identity and powers; never its secret or digits",
  });

const Subscription = z
  .strictObject({
    id: Id,
    plan: z.string().openapi({ description: "The plan's key in the catalog", example: "pro" }),
    plan_version_id: z.string(),
    status: z.enum(["trialing", "active", "past_due", "unpaid", "paused", "canceled"]),
    interval: z.enum(["month", "year"]),
    current_period_start: Timestamp,
    current_period_end: Timestamp,
    trial_end: Timestamp.nullable(),
    cancel_at: Timestamp.nullable(),
    cancel_at_period_end: z.boolean(),
    canceled_at: Timestamp.nullable(),
    seats: z.number().int(),
    provider: z.enum(["stripe"]).nullable(),
  })
  .openapi("WebhookEventSubscription", { description: "The subscription after the change" });

const Quota = z
  .strictObject({
    org_id: Id,
    quota: z.string().openapi({ example: "projects" }),
    used: z.number().int(),
    limit: z.number().int(),
    plan: z.string(),
    threshold_percent: z.number().int().openapi({ description: "80, 95 or 100" }),
    period_start: Timestamp,
    alert_id: z
      .string()
      .nullable()
      .openapi({ description: "The alert recorded with it; null for quota.exceeded" }),
  })
  .openapi("WebhookEventQuota");

const Invoice = z
  .strictObject({
    org_id: Id,
    invoice_id: z.string().nullable().openapi({ example: "in_1QxYz2AbCdEfGhIj" }),
    customer_id: z.string().nullable(),
    subscription_id: z.string().nullable(),
    amount_due: z.number().int().nullable().openapi({ description: "Minor units of currency" }),
    amount_paid: z.number().int().nullable().openapi({ description: "Minor units of currency" }),
    currency: z.string().nullable(),
    hosted_invoice_url: z.string().nullable(),
    invoice_created_at: Timestamp,
    stripe_event_id: z.string().openapi({ description: "The Stripe event it was read from" }),
  })
  .openapi("WebhookEventInvoice");

const alertFields = { org_id: Id, alert_id: Id, period_start: Timestamp };

/** Each type's `data`; `satisfies` below holds it to the domain's `WebhookEventData`. */
export const WEBHOOK_EVENT_DATA_SCHEMAS = {
  "organization.updated": z.object({ org_id: Id, organization: Organization, changes: Changes }),
  "organization.suspended": z.object({
    org_id: Id,
    organization: Organization,
    reason: z.string().nullable(),
    suspended_at: Timestamp,
  }),
  "organization.unsuspended": z.object({ org_id: Id, organization: Organization }),
  "organization.deleted": z.object({ org_id: Id, organization: Organization, deleted_at: Timestamp }),
  "member.added": z.object({
    org_id: Id,
    member: Member,
    source: z.enum(["organization_created", "invitation"]),
    invitation_id: z.string().nullable(),
  }),
  "member.removed": z.object({
    org_id: Id,
    member: Member,
    left: z.boolean(),
    revoked_api_key_ids: z.array(z.string()),
  }),
  "member.role_changed": z.object({
    org_id: Id,
    member: Member,
    previous_role: Role,
    changes: Changes,
  }),
  "invitation.created": z.object({ org_id: Id, invitation: Invitation }),
  "invitation.accepted": z.object({ org_id: Id, invitation: Invitation, user_id: Id }),
  "api_key.created": z.object({ org_id: Id, api_key: ApiKey }),
  "api_key.revoked": z.object({
    org_id: Id,
    api_key: ApiKey,
    reason: z.enum(["revoked", "creator_removed"]),
  }),
  "api_key.rotated": z.object({
    org_id: Id,
    api_key: ApiKey,
    previous_api_key_id: Id,
    previous_expires_at: Timestamp.nullable(),
  }),
  "api_key.expiring": z.object({ org_id: Id, api_key: ApiKey, expires_at: Timestamp }),
  "subscription.created": z.object({ org_id: Id, subscription: Subscription }),
  "subscription.updated": z.object({ org_id: Id, subscription: Subscription, changes: Changes }),
  "subscription.canceled": z.object({ org_id: Id, subscription: Subscription, changes: Changes }),
  "subscription.trial_ending": z.object({
    ...alertFields,
    trial_end: Timestamp,
    trial_plan: z.string(),
    at_trial_end: z.enum(["continues", "fallback"]),
    next_plan: z.string(),
  }),
  "credits.granted": z.object({
    org_id: Id,
    grant: z.object({
      id: Id,
      amount: Decimal,
      source: z.string(),
      priority: z.number().int(),
      expires_at: Timestamp.nullable(),
      reference: z.string().nullable(),
      reason: z.string().nullable(),
    }),
    transaction_id: Id,
    balance: Decimal,
  }),
  "credits.low": z.object({
    ...alertFields,
    balance: Decimal,
    allocation: Decimal,
    percent: z.number(),
  }),
  "spending_limit.soft_reached": z.object({ ...alertFields, used: Decimal, limit: Decimal }),
  "spending_limit.hard_reached": z.object({
    ...alertFields,
    used: Decimal,
    limit: Decimal,
    action: z.enum(["block", "alert"]),
  }),
  "quota.warning": Quota,
  "quota.critical": Quota,
  "quota.exceeded": Quota,
  "usage.period_reset": z.object({
    org_id: Id,
    period_start: Timestamp,
    period_end: Timestamp,
    allocation: Decimal.nullable(),
  }),
  "invoice.created": Invoice,
  "invoice.paid": Invoice,
  "invoice.payment_failed": Invoice,
  "webhook.endpoint_disabled": z.object({
    endpoint_id: Id,
    url: z.string(),
    failing_since: Timestamp,
    disabled_at: Timestamp,
  }),
  "webhook.test": z.object({ endpoint_id: Id, message: z.string() }),
} satisfies { [T in WebhookEventType]: z.ZodType<WebhookEventData[T]> };

/**
 * The other direction: the domain's data is assignable to its schema's output and names no top-level field
 * the schema lacks (nested extras are caught at run time: the tests parse every emitted event and compare
 * what the schema keeps with what was emitted).
 */
type Covers<S extends Record<WebhookEventType, z.ZodType>> = {
  [T in WebhookEventType]: Exclude<keyof WebhookEventData[T], keyof z.output<S[T]>> extends never
    ? WebhookEventData[T] extends z.output<S[T]>
      ? true
      : never
    : never;
};
const covered: Covers<typeof WEBHOOK_EVENT_DATA_SCHEMAS> = Object.fromEntries(
  WEBHOOK_EVENT_TYPES.map((t) => [t, true]),
) as Covers<typeof WEBHOOK_EVENT_DATA_SCHEMAS>;
void covered;

/** When each type is emitted: the OpenAPI description of its webhook (docs/webhook-events.md says more). */
export const WEBHOOK_EVENT_DESCRIPTIONS: Record<WebhookEventType, string> = {
  "organization.updated":
    "The organization's profile or billing fields changed (PATCH, or a Stripe customer linked); `changes` lists them",
  "organization.suspended": "The operator suspended the organization: its keys are refused until unsuspended",
  "organization.unsuspended": "The organization was unsuspended",
  "organization.deleted": "The organization was deleted (soft): it stops authenticating at once",
  "member.added": "A user joined: by creating the organization, or by accepting an invitation",
  "member.removed": "A member was removed or left; the keys they created were revoked with it",
  "member.role_changed": "A member's role changed",
  "invitation.created": "Someone was invited by email",
  "invitation.accepted": "An invitation was accepted (a `member.added` follows in the same transaction)",
  "api_key.created": "An API key was created",
  "api_key.revoked": "An API key was revoked, through the API or because its creator left",
  "api_key.rotated":
    "An API key was rotated: `api_key` is the new key; the previous one ends at `previous_expires_at`",
  "api_key.expiring": "An API key expires within 7 days (once per key and expiry)",
  "subscription.created": "The organization's subscription started (with the organization, or from Stripe)",
  "subscription.updated":
    "The subscription changed: plan, status, interval, seats, a scheduled cancellation, a renewal or trial end",
  "subscription.canceled":
    "A cancellation was requested (at the period end, or now) or Stripe ended the subscription",
  "subscription.trial_ending": "The trial ends within 3 days (once per billing period)",
  "credits.granted": "Credits were granted (a purchase, a promotion…), not the plan's monthly allocation",
  "credits.low": "The balance fell below 10 % of the period's allocation (once per billing period)",
  "spending_limit.soft_reached": "The period's use reached the soft spending limit (once per billing period)",
  "spending_limit.hard_reached": "The period's use reached the hard spending limit (once per billing period)",
  "quota.warning": "A create brought a quota to 80 % of the plan's limit (once per billing period)",
  "quota.critical": "A create brought a quota to 95 % of the plan's limit (once per billing period)",
  "quota.exceeded":
    "A create filled a count quota: the next create of that kind is refused (403 quota_exceeded)",
  "usage.period_reset": "A new credit period began: usage starts at zero and the allocation is granted",
  "invoice.created": "Stripe created an invoice for the organization",
  "invoice.paid": "Stripe recorded an invoice of the organization as paid",
  "invoice.payment_failed": "A payment of an invoice of the organization failed",
  "webhook.endpoint_disabled":
    "An endpoint failing every attempt for 5 days was disabled (sent to the organization's other endpoints)",
  "webhook.test": "Sent by POST …/webhook-endpoints/{endpoint_id}/test, to that endpoint only",
};

/** The schema of one type's whole delivery body: the envelope with that type's data. */
export function webhookEventSchema<T extends WebhookEventType>(type: T) {
  return z
    .strictObject({
      id: z.string().openapi({
        description: "`evt_…`; also the `webhook-id` header",
        example: "evt_01jd0v4n6qf9yb5c8h2m3k7x1z",
      }),
      type: z.literal(type),
      created_at: Timestamp,
      sequence: z.number().int().min(1).openapi({
        description: "The organization's event number: 1, 2, 3… in commit order, without gaps",
      }),
      data: WEBHOOK_EVENT_DATA_SCHEMAS[type],
    })
    .openapi(webhookEventComponentName(type), { description: WEBHOOK_EVENT_DESCRIPTIONS[type] });
}

/** `WebhookEvent_organization.updated`: a valid component name (letters, digits, `.`, `-`, `_`). */
export function webhookEventComponentName(type: WebhookEventType): string {
  return `WebhookEvent_${type}`;
}

const DeliveryHeaders = z.object({
  "webhook-id": z.string().openapi({ description: "The event id; the same on every retry" }),
  "webhook-timestamp": z.string().openapi({ description: "Unix seconds of this attempt" }),
  "webhook-signature": z.string().openapi({
    description:
      "Standard Webhooks: `v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>`, space-separated " +
      "when a rotation's previous secret still applies",
  }),
  "user-agent": z.string().openapi({ example: "Orgplane-Webhooks/0.1.0" }),
});

/** Every event type in the document: a component schema each, and an entry in the 3.1 `webhooks` section. */
export function registerWebhookEvents(api: OpenAPIHono<AppEnv>): void {
  for (const type of WEBHOOK_EVENT_TYPES) {
    const schema = webhookEventSchema(type);
    api.openAPIRegistry.register(webhookEventComponentName(type), schema);
    api.openAPIRegistry.registerWebhook({
      method: "post",
      path: type,
      operationId: `webhookEvent_${type}`,
      tags: ["Webhooks"],
      summary: type,
      description: WEBHOOK_EVENT_DESCRIPTIONS[type],
      request: {
        headers: DeliveryHeaders,
        body: { required: true, content: { "application/json": { schema } } },
      },
      responses: {
        200: {
          description: "Any 2xx acknowledges the delivery; anything else (or no answer in 15 s) is retried",
        },
      },
    });
  }
}
