import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, toList } from "../../schemas/common.ts";
import {
  ListWebhookDeliveriesQuery,
  toWebhookDeliveryResponse,
  WebhookDeliverySchema,
  WebhookEndpointParams,
} from "../../schemas/webhook.ts";

const route = createRoute({
  operationId: "listWebhookDeliveries",
  method: "get",
  path: "/v1/organizations/{org_id}/webhook-endpoints/{endpoint_id}/deliveries",
  tags: ["Webhooks"],
  summary: "The endpoint's delivery log, newest first",
  description:
    "One delivery per event sent to the endpoint: `pending` (an attempt is due at `next_attempt_at`), " +
    "`delivered` (a 2xx answered) or `failed` (every attempt of the retry schedule failed), with the last " +
    "attempt's status, latency and error.",
  ...guarded({ kind: "org", scope: "webhooks:read" }),
  request: {
    params: WebhookEndpointParams,
    query: z.strictObject({ ...ListQuery, ...ListWebhookDeliveriesQuery }),
  },
  responses: {
    200: {
      description: "A page of deliveries",
      content: { "application/json": { schema: listOf(WebhookDeliverySchema, "WebhookDeliveryList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListWebhookDeliveries(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, endpoint_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.webhooks.listDeliveries(org_id, endpoint_id, {
      limit: q.limit,
      cursor: q.cursor,
      state: q.state,
    });
    return c.json(toList(page, toWebhookDeliveryResponse), 200);
  });
}
