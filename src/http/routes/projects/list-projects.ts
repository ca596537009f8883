import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, toList } from "../../schemas/common.ts";
import { ProjectSchema, toProjectResponse } from "../../schemas/project.ts";

const route = createRoute({
  operationId: "listProjects",
  method: "get",
  path: "/v1/organizations/{org_id}/projects",
  tags: ["Projects"],
  summary: "List the projects the credential may see, newest first",
  ...guarded({ kind: "org", scope: "projects:read" }),
  request: {
    params: OrgIdParams,
    query: z.strictObject({
      ...ListQuery,
      state: z
        .enum(["active", "archived"])
        .optional()
        .openapi({ description: "Only projects in this state" }),
    }),
  },
  responses: {
    200: {
      description: "A page of projects",
      content: { "application/json": { schema: listOf(ProjectSchema, "ProjectList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListProjects(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.projects.list(c.var.principal, org_id, {
      limit: q.limit,
      cursor: q.cursor,
      state: q.state,
    });
    return c.json(toList(page, toProjectResponse), 200);
  });
}
