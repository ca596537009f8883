import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  fromOrganizationBody,
  OrganizationSchema,
  toOrganizationResponse,
  UpdateOrganizationBody,
} from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "updateOrganization",
  method: "patch",
  path: "/v1/organizations/{org_id}",
  tags: ["Organizations"],
  summary: "Update an organization",
  ...guarded({ kind: "org", scope: "orgs:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: UpdateOrganizationBody } } },
  },
  responses: {
    200: {
      description: "The updated organization",
      content: { "application/json": { schema: OrganizationSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const rateLimits = body.rate_limits;
    // One transaction: an unknown category or a raise above the plan leaves the organization unchanged too.
    const org = await c.var.services.orgs.update(
      c.var.ctx,
      org_id,
      fromOrganizationBody(body),
      rateLimits === undefined
        ? undefined
        : (stores) => c.var.services.rateLimits.changeIn(stores, c.var.ctx, org_id, rateLimits),
    );
    return c.json(toOrganizationResponse(org), 200);
  });
}
