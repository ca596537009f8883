import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCheckQuota } from "./check-quota.ts";
import { registerListQuotas } from "./list-quotas.ts";

export function registerQuotaRoutes(api: OpenAPIHono<AppEnv>): void {
  registerListQuotas(api);
  registerCheckQuota(api);
}
