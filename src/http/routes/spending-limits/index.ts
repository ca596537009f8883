import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerListAlerts } from "../alerts/list-alerts.ts";
import { registerGetSpendingLimits } from "./get-spending-limits.ts";
import { registerUpdateSpendingLimits } from "./update-spending-limits.ts";

/** Spending limits and the alerts they (and billing events) raise. */
export function registerSpendingLimitRoutes(api: OpenAPIHono<AppEnv>): void {
  registerGetSpendingLimits(api);
  registerUpdateSpendingLimits(api);
  registerListAlerts(api);
}
