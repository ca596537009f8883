import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { CreateOrgInput } from "../../../domain/orgs/orgs.types.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  CreateOrganizationBody,
  fromOrganizationBody,
  OrganizationSchema,
  toOrganizationResponse,
} from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "createOrganization",
  method: "post",
  path: "/v1/organizations",
  tags: ["Organizations"],
  summary: "Create an organization",
  description: "By the operator, or by a signed-in user, who becomes the organization's owner.",
  ...guarded({ kind: "operator_or_user" }),
  request: { body: { required: true, content: { "application/json": { schema: CreateOrganizationBody } } } },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: OrganizationSchema } } },
    ...errorResponses(403, 409, 413, 415, 422),
  },
});

export function registerCreateOrganization(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const input: CreateOrgInput = { ...fromOrganizationBody(body), name: body.name };
    const org = await c.var.services.orgs.create(c.var.ctx, input);
    return c.json(toOrganizationResponse(org), 201);
  });
}
