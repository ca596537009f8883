import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  toUpdateWebhookEndpointInput,
  toWebhookEndpointResponse,
  UpdateWebhookEndpointBody,
  WebhookEndpointParams,
  WebhookEndpointSchema,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "updateWebhookEndpoint",
  method: "patch",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}",
  tags: ["Webhooks"],
  summary: "Change a webhook endpoint's URL, description or event types, pause it, or re-enable it",
  description:
    "Only the fields sent change. `is_active: true` re-enables an endpoint Orgplane disabled for failing " +
    "(clearing `disabled_at`, `disabled_reason` and `failing_since`).",
  ...guarded({ kind: "org", scope: "webhooks:write" }),
  request: {
    params: WebhookEndpointParams,
    body: { required: true, content: { "application/json": { schema: UpdateWebhookEndpointBody } } },
  },
  responses: {
    200: {
      description: "The webhook endpoint",
      content: { "application/json": { schema: WebhookEndpointSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateWebhookEndpoint(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id } = c.req.valid("param");
    const endpoint = await c.var.services.webhooks.updateEndpoint(
      c.var.ctx,
      org_id,
      endpoint_id,
      toUpdateWebhookEndpointInput(c.req.valid("json")),
    );
    return c.json(toWebhookEndpointResponse(endpoint), 200);
  });
}
