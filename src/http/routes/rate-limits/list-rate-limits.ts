import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { WINDOW_SECONDS } from "../../../domain/rate-limits/rate-limits.service.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { RateLimitListSchema, RateLimitsQuery, toRateLimitList } from "../../schemas/rate-limit.ts";

const route = createRoute({
  operationId: "listRateLimits",
  method: "get",
  path: "/v1/organizations/{org_id}/rate-limits",
  tags: ["Subscriptions"],
  summary: "Each rate-limit category's effective limit and where it comes from",
  description:
    "Requests per minute per category of the catalog: the plan's, unless the organization (source `org`) or, " +
    "with `project_id`, the project (source `project`) overrides it. A key's own overrides apply to requests " +
    "made with that key. A category with no limit anywhere is not listed.",
  ...guarded({ kind: "org", scope: "orgs:read" }),
  request: { params: OrgIdParams, query: RateLimitsQuery },
  responses: {
    200: { description: "The limits", content: { "application/json": { schema: RateLimitListSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerListRateLimits(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const { project_id } = c.req.valid("query");
    const limits = await c.var.services.rateLimits.list(org_id, project_id);
    return c.json(toRateLimitList(limits, WINDOW_SECONDS), 200);
  });
}
