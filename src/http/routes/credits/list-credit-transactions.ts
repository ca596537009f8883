import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, toList } from "../../schemas/common.ts";
import { CreditTransactionSchema, toCreditTransaction } from "../../schemas/credits.ts";

const route = createRoute({
  operationId: "listCreditTransactions",
  method: "get",
  path: "/v1/organizations/{org_id}/credits/transactions",
  tags: ["Credits"],
  summary: "The organization's credit ledger, newest first",
  description:
    "Grants, debits, adjustments, reversals and expiries. `amount` is signed; the balance is the sum of every " +
    "entry's amount, and `balance_after` is the balance once the entry was written.",
  ...guarded({ kind: "org", scope: "billing:read" }),
  request: { params: OrgIdParams, query: z.strictObject({ ...ListQuery }) },
  responses: {
    200: {
      description: "A page of transactions",
      content: { "application/json": { schema: listOf(CreditTransactionSchema, "CreditTransactionList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListCreditTransactions(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.credits.listTransactions(org_id, { limit: q.limit, cursor: q.cursor });
    return c.json(toList(page, toCreditTransaction), 200);
  });
}
