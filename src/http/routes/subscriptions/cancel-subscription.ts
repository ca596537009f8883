import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  CancelSubscriptionQuery,
  SubscriptionSchema,
  toSubscriptionResponse,
} from "../../schemas/subscription.ts";

const route = createRoute({
  operationId: "cancelSubscription",
  method: "delete",
  path: "/v1/organizations/{org_id}/subscription",
  tags: ["Subscriptions"],
  summary: "Cancel the subscription",
  description:
    "By default the plan holds until current_period_end (or the trial's end), then the catalog's fallback plan " +
    "applies; `?immediately=true` applies the fallback plan now. Resume with PUT {cancel_at_period_end: false}.",
  ...guarded({ kind: "org", scope: "billing:write" }),
  request: { params: OrgIdParams, query: CancelSubscriptionQuery },
  responses: {
    200: { description: "The subscription", content: { "application/json": { schema: SubscriptionSchema } } },
    ...errorResponses(403, 404, 409),
  },
});

export function registerCancelSubscription(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { immediately } = c.req.valid("query");
    const current = await c.var.services.subscriptions.cancel(
      c.var.ctx,
      c.req.valid("param").org_id,
      immediately === "true",
    );
    return c.json(toSubscriptionResponse(current), 200);
  });
}
