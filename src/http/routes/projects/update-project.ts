import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  ProjectSchema,
  toProjectResponse,
  toUpdateProjectInput,
  UpdateProjectBody,
} from "../../schemas/project.ts";
import { ProjectParams } from "./get-project.ts";

const route = createRoute({
  operationId: "updateProject",
  method: "patch",
  path: "/v1/organizations/{org_id}/projects/{project_id}",
  tags: ["Projects"],
  summary: "Change a project's name, slug, state or metadata",
  ...guarded({ kind: "org", scope: "projects:write" }),
  request: {
    params: ProjectParams,
    body: { required: true, content: { "application/json": { schema: UpdateProjectBody } } },
  },
  responses: {
    200: { description: "The project", content: { "application/json": { schema: ProjectSchema } } },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateProject(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, project_id } = c.req.valid("param");
    const project = await c.var.services.projects.update(
      c.var.ctx,
      org_id,
      project_id,
      toUpdateProjectInput(c.req.valid("json")),
    );
    return c.json(toProjectResponse(project), 200);
  });
}
