import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCreateProject } from "./create-project.ts";
import { registerDeleteProject } from "./delete-project.ts";
import { registerGetProject } from "./get-project.ts";
import { registerListProjects } from "./list-projects.ts";
import { registerUpdateProject } from "./update-project.ts";

export function registerProjectRoutes(api: OpenAPIHono<AppEnv>): void {
  registerCreateProject(api);
  registerListProjects(api);
  registerGetProject(api);
  registerUpdateProject(api);
  registerDeleteProject(api);
}
