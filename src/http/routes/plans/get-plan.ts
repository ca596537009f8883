import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { PlanSchema, toPlanResponse } from "../../schemas/plan.ts";

const route = createRoute({
  operationId: "getPlan",
  method: "get",
  path: "/v1/plans/{plan_id}",
  tags: ["Plans"],
  summary: "Get a plan by key or version id",
  description:
    "The current version, or `version=N`. Private plans and versions that are not current are for the operator; " +
    "a private plan does not exist for an organization's credential (404).",
  ...guarded({ kind: "any", allowSuspended: true }),
  request: {
    params: z.object({
      plan_id: z.string().openapi({
        param: { name: "plan_id", in: "path" },
        example: "pln_01jd0v4n6qf9yb5c8h2m3k7x1z",
        description: "The plan's key (`pro`: its current version), or a version id (`pln_…`: that version)",
      }),
    }),
    query: z.strictObject({
      version: z.coerce
        .number()
        .int()
        .min(1)
        .max(1_000_000)
        .optional()
        .openapi({ description: "With a key: a version number; the current version when absent" }),
    }),
  },
  responses: {
    200: { description: "The plan", content: { "application/json": { schema: PlanSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetPlan(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { plan_id } = c.req.valid("param");
    const { version } = c.req.valid("query");
    const plan = await c.var.services.catalog.getPlan(c.var.principal, plan_id, version);
    return c.json(toPlanResponse(plan), 200);
  });
}
