import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { CreateProjectBody, ProjectSchema, toProjectResponse } from "../../schemas/project.ts";

const route = createRoute({
  operationId: "createProject",
  method: "post",
  path: "/v1/organizations/{org_id}/projects",
  tags: ["Projects"],
  summary: "Create a project",
  ...guarded({ kind: "org", scope: "projects:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateProjectBody } } },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: ProjectSchema } } },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerCreateProject(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const project = await c.var.services.projects.create(c.var.ctx, org_id, {
      name: body.name,
      slug: body.slug,
      state: body.state,
      metadata: body.metadata,
    });
    return c.json(toProjectResponse(project), 201);
  });
}
