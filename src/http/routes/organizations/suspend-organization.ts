import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { OrganizationSchema, toOrganizationResponse } from "../../schemas/organization.ts";

const SuspendBody = z
  .strictObject({ reason: z.string().trim().min(1).max(500).optional() })
  .openapi("SuspendOrganization");

const route = createRoute({
  operationId: "suspendOrganization",
  method: "post",
  path: "/v1/organizations/{org_id}/suspend",
  tags: ["Organizations"],
  summary: "Suspend an organization (operator)",
  description: "Its keys then get 403 organization_suspended on every route but reading the organization.",
  ...guarded({ kind: "operator" }),
  request: {
    params: OrgIdParams,
    body: { required: false, content: { "application/json": { schema: SuspendBody } } },
  },
  responses: {
    200: {
      description: "The suspended organization",
      content: { "application/json": { schema: OrganizationSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerSuspendOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const org = await c.var.services.orgs.suspend(c.var.ctx, org_id, c.req.valid("json").reason ?? null);
    return c.json(toOrganizationResponse(org), 200);
  });
}
