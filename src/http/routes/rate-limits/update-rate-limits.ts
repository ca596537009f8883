import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { WINDOW_SECONDS } from "../../../domain/rate-limits/rate-limits.service.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  RateLimitListSchema,
  RateLimitsQuery,
  toRateLimitList,
  UpdateRateLimitsBody,
} from "../../schemas/rate-limit.ts";

const route = createRoute({
  operationId: "updateRateLimits",
  method: "patch",
  path: "/v1/organizations/{org_id}/rate-limits",
  tags: ["Subscriptions"],
  summary: "Override the plan's rate limits for the organization or one of its projects",
  description:
    "`{rate_limits: {category: requests_per_minute}}` sets an override, `null` removes it. With `orgs:write` an " +
    "organization may set any limit up to its plan's; above the plan needs an operator credential (403).",
  ...guarded({ kind: "org", scope: "orgs:write" }),
  request: {
    params: OrgIdParams,
    query: RateLimitsQuery,
    body: { required: true, content: { "application/json": { schema: UpdateRateLimitsBody } } },
  },
  responses: {
    200: {
      description: "The limits after the change",
      content: { "application/json": { schema: RateLimitListSchema } },
    },
    ...errorResponses(403, 404, 413, 415),
  },
});

export function registerUpdateRateLimits(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const { project_id } = c.req.valid("query");
    const { rate_limits } = c.req.valid("json");
    const limits = await c.var.services.rateLimits.update(c.var.ctx, org_id, rate_limits, project_id);
    return c.json(toRateLimitList(limits, WINDOW_SECONDS), 200);
  });
}
