import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, toList } from "../../schemas/common.ts";
import { toWebhookEndpointResponse, WebhookEndpointSchema } from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "listWebhookEndpoints",
  method: "get",
  path: "/v1/organizations/{org_id}/webhook-endpoints",
  tags: ["Webhooks"],
  summary: "List webhook endpoints, newest first (never their secrets)",
  ...guarded({ kind: "org", scope: "webhooks:read" }),
  request: { params: OrgIdParams, query: z.strictObject({ ...ListQuery }) },
  responses: {
    200: {
      description: "A page of webhook endpoints",
      content: { "application/json": { schema: listOf(WebhookEndpointSchema, "WebhookEndpointList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListWebhookEndpoints(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.webhooks.listEndpoints(org_id, { limit: q.limit, cursor: q.cursor });
    return c.json(toList(page, toWebhookEndpointResponse), 200);
  });
}
