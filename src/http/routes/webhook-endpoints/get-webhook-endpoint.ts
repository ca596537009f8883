import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  toWebhookEndpointResponse,
  WebhookEndpointParams,
  WebhookEndpointSchema,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "getWebhookEndpoint",
  method: "get",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}",
  tags: ["Webhooks"],
  summary: "Get a webhook endpoint (without its secret)",
  ...guarded({ kind: "org", scope: "webhooks:read" }),
  request: { params: WebhookEndpointParams },
  responses: {
    200: {
      description: "The webhook endpoint",
      content: { "application/json": { schema: WebhookEndpointSchema } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerGetWebhookEndpoint(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id } = c.req.valid("param");
    const endpoint = await c.var.services.webhooks.getEndpoint(org_id, endpoint_id);
    return c.json(toWebhookEndpointResponse(endpoint), 200);
  });
}
