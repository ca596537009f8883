import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, idParam, OrgIdParams } from "../../schemas/common.ts";
import { ProjectSchema, toProjectResponse } from "../../schemas/project.ts";

export const ProjectParams = OrgIdParams.extend({
  project_id: idParam("project_id", "prj_01jd0v4n6qf9yb5c8h2m3k7x1z"),
});

const route = createRoute({
  operationId: "getProject",
  method: "get",
  path: "/v1/organizations/{org_id}/projects/{project_id}",
  tags: ["Projects"],
  summary: "Get a project",
  ...guarded({ kind: "org", scope: "projects:read" }),
  request: { params: ProjectParams },
  responses: {
    200: { description: "The project", content: { "application/json": { schema: ProjectSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetProject(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, project_id } = c.req.valid("param");
    const project = await c.var.services.projects.get(c.var.principal, org_id, project_id);
    return c.json(toProjectResponse(project), 200);
  });
}
