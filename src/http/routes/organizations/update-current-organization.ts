import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { credentialOrgId } from "../../../domain/auth/access.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  fromOrganizationBody,
  OrganizationSchema,
  toOrganizationResponse,
  UpdateOrganizationBody,
} from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "updateCurrentOrganization",
  method: "patch",
  path: "/v1/organization",
  tags: ["Organizations"],
  summary: "Update the organization of the presenting key",
  ...guarded({ kind: "org", scope: "orgs:write" }),
  request: { body: { required: true, content: { "application/json": { schema: UpdateOrganizationBody } } } },
  responses: {
    200: {
      description: "The updated organization",
      content: { "application/json": { schema: OrganizationSchema } },
    },
    ...errorResponses(403, 409, 413, 415),
  },
});

export function registerUpdateCurrentOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const orgId = credentialOrgId(c.var.principal);
    const body = c.req.valid("json");
    const rateLimits = body.rate_limits;
    // One transaction: an unknown category or a raise above the plan leaves the organization unchanged too.
    const org = await c.var.services.orgs.update(
      c.var.ctx,
      orgId,
      fromOrganizationBody(body),
      rateLimits === undefined
        ? undefined
        : (stores) => c.var.services.rateLimits.changeIn(stores, c.var.ctx, orgId, rateLimits),
    );
    return c.json(toOrganizationResponse(org), 200);
  });
}
