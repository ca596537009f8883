import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { SubscriptionSchema, toSubscriptionResponse } from "../../schemas/subscription.ts";

const route = createRoute({
  operationId: "getSubscription",
  method: "get",
  path: "/v1/organizations/{org_id}/subscription",
  tags: ["Subscriptions"],
  summary: "Get the organization's subscription",
  description: "Trial ends, period ends and cancellations that are due are applied before answering.",
  ...guarded({ kind: "org", scope: "billing:read" }),
  request: { params: OrgIdParams },
  responses: {
    200: { description: "The subscription", content: { "application/json": { schema: SubscriptionSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetSubscription(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const current = await c.var.services.subscriptions.get(c.req.valid("param").org_id);
    return c.json(toSubscriptionResponse(current), 200);
  });
}
