import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerGetUsage } from "./get-usage.ts";
import { registerIngestUsageEvents } from "./ingest-usage-events.ts";

export function registerUsageRoutes(api: OpenAPIHono<AppEnv>): void {
  registerIngestUsageEvents(api);
  registerGetUsage(api);
}
