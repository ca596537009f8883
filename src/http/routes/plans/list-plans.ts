import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { PlanSchema, toPlanResponse } from "../../schemas/plan.ts";

const route = createRoute({
  operationId: "listPlans",
  method: "get",
  path: "/v1/plans",
  tags: ["Plans"],
  summary: "List the plans of the catalog",
  description:
    "Current versions of public plans, in catalog order. The operator also sees private plans and, with " +
    "`all_versions=true`, every version of every plan (newest first within a plan).",
  ...guarded({ kind: "any", allowSuspended: true }),
  request: {
    query: z.strictObject({
      all_versions: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "Every version, not only current ones (operator only)" }),
    }),
  },
  responses: {
    200: {
      description: "The plans",
      content: {
        "application/json": {
          schema: z.object({ data: z.array(PlanSchema) }).openapi("PlanList"),
        },
      },
    },
    ...errorResponses(403),
  },
});

export function registerListPlans(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { all_versions } = c.req.valid("query");
    const plans = await c.var.services.catalog.listPlans(c.var.principal, {
      allVersions: all_versions === "true",
    });
    return c.json({ data: plans.map(toPlanResponse) }, 200);
  });
}
