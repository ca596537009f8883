import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { toUsageReportResponse, UsageQuerySchema, UsageReportSchema } from "../../schemas/usage.ts";

const route = createRoute({
  operationId: "getUsage",
  method: "get",
  path: "/v1/organizations/{org_id}/usage",
  tags: ["Usage"],
  summary: "The organization's usage: totals, series, per-project rows and its usage view",
  description:
    "Answered from hourly rollups kept as events arrive (never by scanning raw events). `from`/`to` are " +
    "rounded out to whole UTC hours; without them the current billing period is shown. `totals` has one row " +
    "per meter (value per the meter's aggregation, credits, and cost/benchmark cost/savings where the " +
    "catalog prices the meter); `series` one per bucket and meter (and project/key with `group_by`); " +
    "`projects` one per project over the range; `summary` is the catalog's usage view — for a preset, the " +
    "fields of its reference platform (docs/usage-view.md).",
  ...guarded({ kind: "org", scope: "usage:read" }),
  request: { params: OrgIdParams, query: UsageQuerySchema },
  responses: {
    200: { description: "The usage", content: { "application/json": { schema: UsageReportSchema } } },
    ...errorResponses(403, 404, 422),
  },
});

export function registerGetUsage(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const report = await c.var.services.usage.report(org_id, {
      from: q.from === undefined ? undefined : new Date(q.from),
      to: q.to === undefined ? undefined : new Date(q.to),
      granularity: q.granularity,
      groupBy: q.group_by.filter((d) => d === "project" || d === "key"),
      meters: q.meters,
    });
    return c.json(toUsageReportResponse(report), 200);
  });
}
