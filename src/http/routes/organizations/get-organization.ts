import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { OrganizationViewSchema, toOrganizationViewResponse } from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "getOrganization",
  method: "get",
  path: "/v1/organizations/{org_id}",
  tags: ["Organizations"],
  summary: "Get an organization",
  description: "Readable by a suspended organization's own keys; a deleted one only by the operator.",
  ...guarded({ kind: "org", scope: "orgs:read", allowSuspended: true }),
  request: { params: OrgIdParams },
  responses: {
    200: {
      description: "The organization",
      content: { "application/json": { schema: OrganizationViewSchema } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerGetOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const view = await c.var.services.quotas.organizationView(c.req.valid("param").org_id);
    return c.json(toOrganizationViewResponse(view), 200);
  });
}
