import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerGetOrgMetrics } from "./get-org-metrics.ts";

export function registerMetricsRoutes(api: OpenAPIHono<AppEnv>): void {
  registerGetOrgMetrics(api);
}
