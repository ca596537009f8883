import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  RotateWebhookSecretBody,
  toWebhookEndpointResponse,
  WebhookEndpointParams,
  WebhookEndpointWithSecretSchema,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "rotateWebhookSecret",
  method: "post",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}/rotate-secret",
  tags: ["Webhooks"],
  summary: "Replace the signing secret; the new one is returned once",
  description:
    "For `expire_previous_in_seconds` after the rotation every delivery carries two signatures, one with each " +
    "secret, so receivers can switch to the new secret without missing an event; then the new one alone.",
  ...guarded({ kind: "org", scope: "webhooks:write" }),
  request: {
    params: WebhookEndpointParams,
    body: { required: false, content: { "application/json": { schema: RotateWebhookSecretBody } } },
  },
  responses: {
    200: {
      description: "The endpoint with its new secret (shown only here)",
      content: { "application/json": { schema: WebhookEndpointWithSecretSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerRotateWebhookSecret(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const { endpoint, secret } = await c.var.services.webhooks.rotateSecret(c.var.ctx, org_id, endpoint_id, {
      expirePreviousInSeconds: body.expire_previous_in_seconds ?? 0,
    });
    return c.json({ ...toWebhookEndpointResponse(endpoint), secret }, 200);
  });
}
