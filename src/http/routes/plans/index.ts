import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerGetPlan } from "./get-plan.ts";
import { registerListPlans } from "./list-plans.ts";

export function registerPlanRoutes(api: OpenAPIHono<AppEnv>): void {
  registerListPlans(api);
  registerGetPlan(api);
}
