import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { credentialOrgId } from "../../../domain/auth/access.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { OrganizationViewSchema, toOrganizationViewResponse } from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "getCurrentOrganization",
  method: "get",
  path: "/v1/organization",
  tags: ["Organizations"],
  summary: "Get the organization of the presenting key",
  ...guarded({ kind: "org", scope: "orgs:read", allowSuspended: true }),
  responses: {
    200: {
      description: "The organization",
      content: { "application/json": { schema: OrganizationViewSchema } },
    },
    ...errorResponses(403),
  },
});

export function registerGetCurrentOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const view = await c.var.services.quotas.organizationView(credentialOrgId(c.var.principal));
    return c.json(toOrganizationViewResponse(view), 200);
  });
}
