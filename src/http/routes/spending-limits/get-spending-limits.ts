import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { SpendingLimitsSchema, toSpendingLimitsResponse } from "../../schemas/spending-limits.ts";

const route = createRoute({
  operationId: "getSpendingLimits",
  method: "get",
  path: "/v1/organizations/{org_id}/spending-limits",
  tags: ["Billing"],
  summary: "The organization's monthly spending limits and alert thresholds",
  description:
    "An organization that never set limits gets the defaults (no soft or hard limit, thresholds 50/75/90/100, " +
    "`hard_limit_action: block`) with `configured: false`.",
  ...guarded({ kind: "org", scope: "billing:read" }),
  request: { params: OrgIdParams },
  responses: {
    200: { description: "The limits", content: { "application/json": { schema: SpendingLimitsSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetSpendingLimits(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    return c.json(toSpendingLimitsResponse(await c.var.services.spendingLimits.get(org_id)), 200);
  });
}
