import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { OrganizationSchema, toOrganizationResponse } from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "deleteOrganization",
  method: "delete",
  path: "/v1/organizations/{org_id}",
  tags: ["Organizations"],
  summary: "Delete an organization (soft)",
  description:
    "The organization's keys stop authenticating at once; its data stays, readable by the operator. " +
    "Deleting a deleted organization returns it unchanged.",
  ...guarded({ kind: "org", scope: "orgs:delete" }),
  request: { params: OrgIdParams },
  responses: {
    200: {
      description: "The deleted organization",
      content: { "application/json": { schema: OrganizationSchema } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerDeleteOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const org = await c.var.services.orgs.delete(c.var.ctx, c.req.valid("param").org_id);
    return c.json(toOrganizationResponse(org), 200);
  });
}
