import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  toWebhookDeliveryResponse,
  WebhookDeliverySchema,
  WebhookEndpointParams,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "testWebhookEndpoint",
  method: "post",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}/test",
  tags: ["Webhooks"],
  summary: "Send a webhook.test event to this endpoint now; answers its delivery after the first attempt",
  description:
    "The event goes to this endpoint only, whatever its `event_types`. The answer shows how the first attempt " +
    "went (`state`, `response_status`, `latency_ms`, `last_error`); a failed attempt is retried on the usual " +
    "schedule. Waits for the attempt: up to 15 s when the endpoint does not answer.",
  ...guarded({ kind: "org", scope: "webhooks:write" }),
  request: { params: WebhookEndpointParams },
  responses: {
    200: {
      description: "The test event's delivery, after its first attempt",
      content: { "application/json": { schema: WebhookDeliverySchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerTestWebhookEndpoint(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id } = c.req.valid("param");
    const delivery = await c.var.services.webhooks.sendTest(c.var.ctx, org_id, endpoint_id);
    return c.json(toWebhookDeliveryResponse(delivery), 200);
  });
}
