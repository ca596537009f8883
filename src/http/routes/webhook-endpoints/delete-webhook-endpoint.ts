import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { WebhookEndpointParams } from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "deleteWebhookEndpoint",
  method: "delete",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}",
  tags: ["Webhooks"],
  summary: "Delete a webhook endpoint; nothing more is sent to it",
  ...guarded({ kind: "org", scope: "webhooks:write" }),
  request: { params: WebhookEndpointParams },
  responses: {
    204: { description: "Deleted" },
    ...errorResponses(403, 404),
  },
});

export function registerDeleteWebhookEndpoint(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id } = c.req.valid("param");
    await c.var.services.webhooks.deleteEndpoint(c.var.ctx, org_id, endpoint_id);
    return c.body(null, 204);
  });
}
