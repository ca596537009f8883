import { z } from "@hono/zod-openapi";
import { MAX_ENDPOINT_URL_CHARS } from "../../domain/webhooks/url-policy.ts";
import {
  MAX_SECRET_OVERLAP_SECONDS,
  type UpdateEndpointInput,
} from "../../domain/webhooks/webhooks.service.ts";
import {
  WEBHOOK_EVENT_TYPES,
  type WebhookDelivery,
  type WebhookEndpoint,
} from "../../domain/webhooks/webhooks.types.ts";
import { idParam, OrgIdParams, storableText, Timestamp } from "./common.ts";

export const WebhookEventTypeSchema = z.enum(WEBHOOK_EVENT_TYPES).openapi("WebhookEventType", {
  description: "A type of the event catalog (docs/webhook-events.md)",
});

export const WebhookEndpointParams = OrgIdParams.extend({
  endpoint_id: idParam("endpoint_id", "whe_01jd0v4n6qf9yb5c8h2m3k7x1z"),
});

export const WebhookDeliveryParams = WebhookEndpointParams.extend({
  delivery_id: idParam("delivery_id", "whd_01jd0v4n6qf9yb5c8h2m3k7x1z"),
});

const DeliveryStateSchema = z.enum(["pending", "delivered", "failed"]).openapi("WebhookDeliveryState");

const endpointFields = {
  // Only the length and storability are checked here; what makes a URL acceptable (absolute http(s), no
  // credentials, https and a public host unless WEBHOOK_ALLOW_PRIVATE) is the service's rule, one place.
  url: storableText(z.string().trim().min(1).max(MAX_ENDPOINT_URL_CHARS)).openapi({
    format: "uri",
    example: "https://example.com/orgplane/webhooks",
    description:
      "Where events are POSTed: an absolute https URL on a public host, without credentials (http and private " +
      "or loopback addresses only when the server runs with WEBHOOK_ALLOW_PRIVATE=true)",
  }),
  description: storableText(z.string().trim().max(1024)).nullable(),
  // Every type at most once: the list is a filter, and a repeated type is more likely a typo than intent.
  event_types: z
    .array(WebhookEventTypeSchema)
    .max(WEBHOOK_EVENT_TYPES.length)
    .superRefine((types, ctx) => {
      const seen = new Set<string>();
      types.forEach((type, i) => {
        if (seen.has(type)) {
          ctx.addIssue({ code: "custom", message: `'${type}' is listed more than once`, path: [i] });
        }
        seen.add(type);
      });
    }),
  is_active: z.boolean(),
};

export const CreateWebhookEndpointBody = z
  .strictObject({
    url: endpointFields.url,
    description: endpointFields.description.optional(),
    event_types: endpointFields.event_types
      .optional()
      .openapi({ description: "The event types sent to it (answered sorted); empty or absent: every type" }),
    is_active: endpointFields.is_active.optional().openapi({ description: "Defaults to true" }),
  })
  .openapi("CreateWebhookEndpoint");

export const UpdateWebhookEndpointBody = z
  .strictObject({
    url: endpointFields.url.optional(),
    description: endpointFields.description.optional(),
    event_types: endpointFields.event_types
      .optional()
      .openapi({ description: "Replaces the whole list; empty: every type" }),
    is_active: endpointFields.is_active.optional().openapi({
      description: "false pauses deliveries; true re-enables an endpoint that was disabled for failing",
    }),
  })
  .openapi("UpdateWebhookEndpoint");

export function toUpdateWebhookEndpointInput(
  body: z.infer<typeof UpdateWebhookEndpointBody>,
): UpdateEndpointInput {
  const out: UpdateEndpointInput = {};
  if (body.url !== undefined) out.url = body.url;
  if (body.description !== undefined) out.description = body.description;
  if (body.event_types !== undefined) out.eventTypes = body.event_types;
  if (body.is_active !== undefined) out.isActive = body.is_active;
  return out;
}

export const RotateWebhookSecretBody = z
  .strictObject({
    expire_previous_in_seconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_SECRET_OVERLAP_SECONDS)
      .optional()
      .openapi({
        description:
          "How long deliveries stay signed with the previous secret as well (0, the default: the new secret alone " +
          "from now on; at most 7 days)",
      }),
  })
  .openapi("RotateWebhookSecret");

export const ListWebhookDeliveriesQuery = {
  state: DeliveryStateSchema.optional().openapi({ description: "Only deliveries in this state" }),
};

export const WebhookEndpointSchema = z
  .object({
    id: z.string().openapi({ example: "whe_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("webhook_endpoint"),
    org_id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    event_types: z.array(WebhookEventTypeSchema).openapi({ description: "Empty: every type" }),
    is_active: z.boolean(),
    disabled_at: Timestamp.nullable().openapi({
      description:
        "When Orgplane disabled it after failing continuously for 5 days (is_active is then false)",
    }),
    disabled_reason: z.string().nullable(),
    failing_since: Timestamp.nullable().openapi({
      description: "The first failed attempt since its last success; null while it succeeds",
    }),
    secret_rotated_until: Timestamp.nullable().openapi({
      description: "Until then deliveries carry a signature with the previous secret too",
    }),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi("WebhookEndpoint");

export const WebhookEndpointWithSecretSchema = WebhookEndpointSchema.extend({
  secret: z.string().openapi({
    example: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwK4ZcJ8hT0nA=",
    description:
      "The signing secret (Standard Webhooks). Shown only here: once at creation and once per rotation.",
  }),
}).openapi("WebhookEndpointWithSecret");

export function toWebhookEndpointResponse(e: WebhookEndpoint): z.infer<typeof WebhookEndpointSchema> {
  return {
    id: e.id,
    object: "webhook_endpoint",
    org_id: e.orgId,
    url: e.url,
    description: e.description,
    event_types: e.eventTypes,
    is_active: e.isActive,
    disabled_at: e.disabledAt?.toISOString() ?? null,
    disabled_reason: e.disabledReason,
    failing_since: e.failingSince?.toISOString() ?? null,
    secret_rotated_until: e.previousSecretExpiresAt?.toISOString() ?? null,
    created_at: e.createdAt.toISOString(),
    updated_at: e.updatedAt.toISOString(),
  };
}

export const WebhookDeliverySchema = z
  .object({
    id: z.string().openapi({ example: "whd_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    object: z.literal("webhook_delivery"),
    endpoint_id: z.string(),
    event_id: z.string().openapi({ description: "The event's id: the webhook-id header of every attempt" }),
    event_type: WebhookEventTypeSchema,
    state: DeliveryStateSchema,
    attempts: z.number().int().openapi({ description: "Attempts made so far" }),
    next_attempt_at: Timestamp.nullable().openapi({ description: "null once delivered or failed" }),
    last_attempt_at: Timestamp.nullable(),
    response_status: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The HTTP status of the last attempt; null when nothing answered" }),
    latency_ms: z.number().int().nullable().openapi({ description: "How long the last attempt took" }),
    last_error: z.string().nullable().openapi({
      description:
        "Why the last attempt failed: a non-2xx status and the start of the body, a timeout, a refusal",
    }),
    created_at: Timestamp,
    delivered_at: Timestamp.nullable(),
  })
  .openapi("WebhookDelivery");

export function toWebhookDeliveryResponse(d: WebhookDelivery): z.infer<typeof WebhookDeliverySchema> {
  return {
    id: d.id,
    object: "webhook_delivery",
    endpoint_id: d.endpointId,
    event_id: d.eventId,
    event_type: d.eventType,
    state: d.state,
    attempts: d.attempts,
    next_attempt_at: d.nextAttemptAt?.toISOString() ?? null,
    last_attempt_at: d.lastAttemptAt?.toISOString() ?? null,
    response_status: d.responseStatus,
    latency_ms: d.latencyMs === null ? null : Math.round(d.latencyMs),
    last_error: d.lastError,
    created_at: d.createdAt.toISOString(),
    delivered_at: d.deliveredAt?.toISOString() ?? null,
  };
}
