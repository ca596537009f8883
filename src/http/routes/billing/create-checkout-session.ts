import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { BillingSessionSchema, CreateCheckoutSessionBody } from "../../schemas/billing.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "createCheckoutSession",
  method: "post",
  path: "/v1/organizations/{org_id}/billing/checkout-session",
  tags: ["Billing"],
  summary: "Start a Stripe Checkout for a plan",
  description:
    "Creates the organization's Stripe customer on first use, then a Checkout session in subscription mode " +
    "for the plan's Stripe price. The subscription itself changes when Stripe's webhook events arrive. " +
    "409 `billing_provider_not_configured` without STRIPE_SECRET_KEY.",
  ...guarded({ kind: "org", scope: "billing:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateCheckoutSessionBody } } },
  },
  responses: {
    200: {
      description: "The Checkout URL",
      content: { "application/json": { schema: BillingSessionSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422, 502),
  },
});

export function registerCreateCheckoutSession(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const session = await c.var.services.billing.createCheckoutSession(c.var.ctx, org_id, {
      plan: body.plan,
      successUrl: body.success_url,
      cancelUrl: body.cancel_url,
    });
    return c.json({ url: session.url }, 200);
  });
}
