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
  operationId: "getWebhookDelivery",
  method: "get",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}",
  tags: ["Webhooks"],
  summary: "Get one delivery of the endpoint's log",
  ...guarded({ kind: "org", scope: "webhooks:read" }),
  request: { params: WebhookDeliveryParams },
  responses: {
    200: { description: "The delivery", content: { "application/json": { schema: WebhookDeliverySchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetWebhookDelivery(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id, delivery_id } = c.req.valid("param");
    const delivery = await c.var.services.webhooks.getDelivery(org_id, endpoint_id, delivery_id);
    return c.json(toWebhookDeliveryResponse(delivery), 200);
  });
}
