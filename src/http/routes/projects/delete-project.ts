import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { ProjectSchema, toProjectResponse } from "../../schemas/project.ts";
import { ProjectParams } from "./get-project.ts";

const route = createRoute({
  operationId: "deleteProject",
  method: "delete",
  path: "/v1/organizations/{org_id}/projects/{project_id}",
  tags: ["Projects"],
  summary: "Delete a project; its keys stop authenticating at once",
  ...guarded({ kind: "org", scope: "projects:write" }),
  request: { params: ProjectParams },
  responses: {
    200: { description: "The deleted project", content: { "application/json": { schema: ProjectSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerDeleteProject(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, project_id } = c.req.valid("param");
    const project = await c.var.services.projects.delete(c.var.ctx, org_id, project_id);
    return c.json(toProjectResponse(project), 200);
  });
}
