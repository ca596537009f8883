import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, toList } from "../../schemas/common.ts";
import { OrganizationSchema, toOrganizationResponse } from "../../schemas/organization.ts";

const route = createRoute({
  operationId: "listOrganizations",
  method: "get",
  path: "/v1/organizations",
  tags: ["Organizations"],
  summary: "List organizations, newest first",
  description:
    "The operator sees every organization; a signed-in user sees the organizations they are a member of.",
  ...guarded({ kind: "operator_or_user" }),
  request: {
    query: z.strictObject({
      ...ListQuery,
      status: z
        .enum(["active", "suspended", "deleted"])
        .optional()
        .openapi({ description: "Default: every organization that is not deleted" }),
      slug: z.string().trim().min(1).max(64).optional(),
    }),
  },
  responses: {
    200: {
      description: "A page of organizations",
      content: { "application/json": { schema: listOf(OrganizationSchema, "OrganizationList") } },
    },
    ...errorResponses(403),
  },
});

export function registerListOrganizations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const page = await c.var.services.orgs.list(c.var.principal, {
      limit: q.limit,
      cursor: q.cursor,
      status: q.status,
      slug: q.slug?.toLowerCase(),
    });
    return c.json(toList(page, toOrganizationResponse), 200);
  });
}
