import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerListAuditEvents } from "./list-audit-events.ts";

export function registerAuditEventRoutes(api: OpenAPIHono<AppEnv>): void {
  registerListAuditEvents(api);
}
