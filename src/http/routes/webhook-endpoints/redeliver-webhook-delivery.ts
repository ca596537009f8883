import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  toWebhookDeliveryResponse,
  WebhookDeliveryParams,
  WebhookDeliverySchema,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "redeliverWebhookDelivery",
  method: "post",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
  tags: ["Webhooks"],
  summary: "Attempt a delivery again now; answers it after that attempt",
  description:
    "The same event (same `webhook-id`, so receivers can drop a duplicate), freshly signed, whatever the " +
    "delivery's state; `attempts` counts on, and a failed attempt continues the retry schedule. Waits for the " +
    "attempt: up to 15 s when the endpoint does not answer. 409 invalid_state_transition while an attempt of " +
    "the delivery is under way.",
  ...guarded({ kind: "org", scope: "webhooks:write" }),
  request: { params: WebhookDeliveryParams },
  responses: {
    200: {
      description: "The delivery, after the new attempt",
      content: { "application/json": { schema: WebhookDeliverySchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerRedeliverWebhookDelivery(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id, delivery_id } = c.req.valid("param");
    const delivery = await c.var.services.webhooks.redeliver(c.var.ctx, org_id, endpoint_id, delivery_id);
    return c.json(toWebhookDeliveryResponse(delivery), 200);
  });
}
