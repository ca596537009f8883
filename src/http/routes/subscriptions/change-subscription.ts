import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  ChangeSubscriptionBody,
  SubscriptionSchema,
  toSubscriptionResponse,
} from "../../schemas/subscription.ts";

const route = createRoute({
  operationId: "changeSubscription",
  method: "put",
  path: "/v1/organizations/{org_id}/subscription",
  tags: ["Subscriptions"],
  summary: "Change plan, interval or seats; resume a pending cancellation",
  description:
    "A plan change takes effect now: quotas, rate limits and credit allocation read the new plan version at once. " +
    "Sending the current plan's key moves the subscription to that plan's newest version.",
  ...guarded({ kind: "org", scope: "billing:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: ChangeSubscriptionBody } } },
  },
  responses: {
    200: { description: "The subscription", content: { "application/json": { schema: SubscriptionSchema } } },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerChangeSubscription(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const current = await c.var.services.subscriptions.change(c.var.ctx, c.req.valid("param").org_id, {
      plan: body.plan,
      interval: body.interval,
      seats: body.seats,
      cancelAtPeriodEnd: body.cancel_at_period_end,
    });
    return c.json(toSubscriptionResponse(current), 200);
  });
}
