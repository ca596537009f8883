import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, idParam } from "../../schemas/common.ts";
import {
  CreditTransactionSchema,
  ReverseCreditTransactionBody,
  toCreditTransaction,
} from "../../schemas/credits.ts";

const route = createRoute({
  operationId: "reverseCreditTransaction",
  method: "post",
  path: "/v1/organizations/{org_id}/credits/transactions/{transaction_id}/reverse",
  tags: ["Credits"],
  summary: "Reverse one ledger entry, once",
  description:
    "Operator only. A debit or negative adjustment is given back (to the grants it took from while they " +
    "live, else as a new `adjustment` grant); a grant or positive adjustment is taken back whole while the " +
    "grant is live (409 `insufficient_credits` when that would pass the overdraft). Expiries and reversals " +
    "cannot be reversed; a second reversal is 409 `already_reversed`.",
  ...guarded({ kind: "operator" }),
  request: {
    params: z.object({
      org_id: idParam("org_id", "org_01jd0v4n6qf9yb5c8h2m3k7x1z"),
      transaction_id: idParam("transaction_id", "crt_01jd0v4n6qf9yb5c8h2m3k7x1z"),
    }),
    body: { required: true, content: { "application/json": { schema: ReverseCreditTransactionBody } } },
  },
  responses: {
    201: {
      description: "The reversal's ledger entry",
      content: { "application/json": { schema: CreditTransactionSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerReverseCreditTransaction(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, transaction_id } = c.req.valid("param");
    const entry = await c.var.services.credits.reverse(
      c.var.ctx,
      org_id,
      transaction_id,
      c.req.valid("json").reason,
    );
    return c.json(toCreditTransaction(entry), 201);
  });
}
