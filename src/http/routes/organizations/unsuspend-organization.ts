import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { OrganizationSchema, toOrganizationResponse } from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "unsuspendOrganization",
  method: "post",
  path: "/v1/organizations/{org_id}/unsuspend",
  tags: ["Organizations"],
  summary: "Lift a suspension (operator)",
  ...guarded({ kind: "operator" }),
  request: { params: OrgIdParams },
  responses: {
    200: {
      description: "The active organization",
      content: { "application/json": { schema: OrganizationSchema } },
    },
    ...errorResponses(403, 404, 409, 422),
  },
});

export function registerUnsuspendOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const org = await c.var.services.orgs.unsuspend(c.var.ctx, c.req.valid("param").org_id);
    return c.json(toOrganizationResponse(org), 200);
  });
}
