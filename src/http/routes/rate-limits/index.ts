import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerListRateLimits } from "./list-rate-limits.ts";
import { registerUpdateRateLimits } from "./update-rate-limits.ts";

export function registerRateLimitRoutes(api: OpenAPIHono<AppEnv>): void {
  registerListRateLimits(api);
  registerUpdateRateLimits(api);
}
