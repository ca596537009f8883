import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { CreateCreditGrantBody, CreditGrantCreatedSchema, toCreditGrant } from "../../schemas/credits.ts";

const route = createRoute({
  operationId: "createCreditGrant",
  method: "post",
  path: "/v1/organizations/{org_id}/credits/grants",
  tags: ["Credits"],
  summary: "Grant credits (a purchase, promotional credits or an adjustment)",
  description:
    "Operator only. Send an `Idempotency-Key` to make a retry safe; a `reference` (e.g. a payment id) is " +
    "unique per organization, so a second grant with it is 409 `reference_taken` naming the first grant. A " +
    "grant first repays any overdrawn part of the balance.",
  ...guarded({ kind: "operator" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateCreditGrantBody } } },
  },
  responses: {
    201: {
      description: "The grant",
      content: { "application/json": { schema: CreditGrantCreatedSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerCreateCreditGrant(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const { grant, entry, upgradedTo } = await c.var.services.credits.grant(c.var.ctx, org_id, {
      amount: body.amount,
      source: body.source,
      expiresAt: body.expires_at === undefined ? undefined : new Date(body.expires_at),
      priority: body.priority,
      reason: body.reason,
      reference: body.reference,
    });
    return c.json({ ...toCreditGrant(grant), transaction_id: entry.id, plan_upgraded_to: upgradedTo }, 201);
  });
}
