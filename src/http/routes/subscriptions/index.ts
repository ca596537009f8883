import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCancelSubscription } from "./cancel-subscription.ts";
import { registerChangeSubscription } from "./change-subscription.ts";
import { registerGetSubscription } from "./get-subscription.ts";

export function registerSubscriptionRoutes(api: OpenAPIHono<AppEnv>): void {
  registerGetSubscription(api);
  registerChangeSubscription(api);
  registerCancelSubscription(api);
}
