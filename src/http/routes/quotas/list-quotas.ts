import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { QuotaListSchema, toQuotaResponse } from "../../schemas/subscription.ts";

const route = createRoute({
  operationId: "listQuotas",
  method: "get",
  path: "/v1/organizations/{org_id}/quotas",
  tags: ["Subscriptions"],
  summary: "Every quota of the organization's plan, with its limit and current use",
  description:
    "members, projects, api_keys (active) and invitations (pending) are counted by Orgplane; quotas the product " +
    "owns (datasets, storage…) show the use the usage API reports.",
  ...guarded({ kind: "org", scope: "orgs:read" }),
  request: { params: OrgIdParams },
  responses: {
    200: { description: "The quotas", content: { "application/json": { schema: QuotaListSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerListQuotas(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const quotas = await c.var.services.quotas.list(c.req.valid("param").org_id);
    return c.json({ data: quotas.map(toQuotaResponse), has_more: false, next_cursor: null }, 200);
  });
}
