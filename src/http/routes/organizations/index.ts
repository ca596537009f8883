import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCreateOrganization } from "./create-organization.ts";
import { registerDeleteOrganization } from "./delete-organization.ts";
import { registerGetCurrentOrganization } from "./get-current-organization.ts";
import { registerGetOrganization } from "./get-organization.ts";
import { registerListOrganizations } from "./list-organizations.ts";
import { registerSuspendOrganization } from "./suspend-organization.ts";
import { registerUnsuspendOrganization } from "./unsuspend-organization.ts";
import { registerUpdateCurrentOrganization } from "./update-current-organization.ts";
import { registerUpdateOrganization } from "./update-organization.ts";

export function registerOrganizationRoutes(api: OpenAPIHono<AppEnv>): void {
  registerCreateOrganization(api);
  registerListOrganizations(api);
  registerGetCurrentOrganization(api);
  registerUpdateCurrentOrganization(api);
  registerGetOrganization(api);
  registerUpdateOrganization(api);
  registerDeleteOrganization(api);
  registerSuspendOrganization(api);
  registerUnsuspendOrganization(api);
}
