import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  CreateWebhookEndpointBody,
  toWebhookEndpointResponse,
  WebhookEndpointWithSecretSchema,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "createWebhookEndpoint",
  method: "post",
  path: "/v1/organizations/{org_id}/webhook-endpoints",
  tags: ["Webhooks"],
  summary: "Add a webhook endpoint; its signing secret is returned once",
  description:
    "Events of the types in `event_types` (all types when empty) are POSTed to `url`, signed with the secret " +
    "(Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`). The URL must be https on a " +
    "public host unless the server runs with WEBHOOK_ALLOW_PRIVATE=true; see docs/webhooks.md.",
  ...guarded({ kind: "org", scope: "webhooks:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateWebhookEndpointBody } } },
  },
  responses: {
    201: {
      description: "Created, with its secret (shown only here and at rotation)",
      content: { "application/json": { schema: WebhookEndpointWithSecretSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerCreateWebhookEndpoint(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const { endpoint, secret } = await c.var.services.webhooks.createEndpoint(c.var.ctx, org_id, {
      url: body.url,
      description: body.description ?? null,
      eventTypes: body.event_types ?? [],
      isActive: body.is_active ?? true,
    });
    return c.json({ ...toWebhookEndpointResponse(endpoint), secret }, 201);
  });
}
