import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  CreateCreditAdjustmentBody,
  CreditTransactionSchema,
  toCreditTransaction,
} from "../../schemas/credits.ts";

const route = createRoute({
  operationId: "createCreditAdjustment",
  method: "post",
  path: "/v1/organizations/{org_id}/credits/adjustments",
  tags: ["Credits"],
  summary: "Adjust the balance by a signed amount, with a reason",
  description:
    "Operator only. A positive amount adds an `adjustment` grant that never expires; a negative one takes " +
    "credits like a debit, in consumption order, and may not take the balance below `-overdraft` (409 " +
    "`insufficient_credits`).",
  ...guarded({ kind: "operator" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateCreditAdjustmentBody } } },
  },
  responses: {
    201: {
      description: "The adjustment's ledger entry",
      content: { "application/json": { schema: CreditTransactionSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerCreateCreditAdjustment(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const entry = await c.var.services.credits.adjust(c.var.ctx, org_id, body);
    return c.json(toCreditTransaction(entry), 201);
  });
}
