import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerGetIntegrations } from "./get-integrations.ts";
import { registerTestCurrentIntegrations } from "./test-current-integrations.ts";
import { registerTestIntegrations } from "./test-integrations.ts";
import { registerUpdateCurrentIntegrations } from "./update-current-integrations.ts";
import { registerUpdateIntegrations } from "./update-integrations.ts";

export function registerIntegrationRoutes(api: OpenAPIHono<AppEnv>): void {
  registerGetIntegrations(api);
  registerUpdateIntegrations(api);
  registerUpdateCurrentIntegrations(api);
  registerTestIntegrations(api);
  registerTestCurrentIntegrations(api);
}
