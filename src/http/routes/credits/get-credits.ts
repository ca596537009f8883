import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { CreditsSchema, toCredits } from "../../schemas/credits.ts";

const route = createRoute({
  operationId: "getCredits",
  method: "get",
  path: "/v1/organizations/{org_id}/credits",
  tags: ["Credits"],
  summary: "The organization's credit balance, its grants and this period's use",
  description:
    "The balance is the sum of the ledger. `grants` lists the live grants in the order debits consume them " +
    "(promotional first, then the soonest to expire, then purchased). Reading settles the period: after a " +
    "period end the old allocation expires and the new one is granted, exactly once.",
  ...guarded({ kind: "org", scope: "billing:read" }),
  request: { params: OrgIdParams },
  responses: {
    200: { description: "The credits", content: { "application/json": { schema: CreditsSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetCredits(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    return c.json(toCredits(org_id, await c.var.services.credits.get(org_id)), 200);
  });
}
