import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { BillingSessionSchema, CreatePortalSessionBody } from "../../schemas/billing.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "createPortalSession",
  method: "post",
  path: "/v1/organizations/{org_id}/billing/portal-session",
  tags: ["Billing"],
  summary: "Open the Stripe billing portal",
  description:
    "Creates the organization's Stripe customer on first use, then a billing-portal session where the " +
    "customer manages payment methods, invoices and cancellation. 409 `billing_provider_not_configured` " +
    "without STRIPE_SECRET_KEY.",
  ...guarded({ kind: "org", scope: "billing:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreatePortalSessionBody } } },
  },
  responses: {
    200: { description: "The portal URL", content: { "application/json": { schema: BillingSessionSchema } } },
    ...errorResponses(403, 404, 409, 413, 415, 422, 502),
  },
});

export function registerCreatePortalSession(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const session = await c.var.services.billing.createPortalSession(c.var.ctx, org_id, {
      returnUrl: c.req.valid("json").return_url,
    });
    return c.json({ url: session.url }, 200);
  });
}
