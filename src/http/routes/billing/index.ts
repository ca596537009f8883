import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCreateCheckoutSession } from "./create-checkout-session.ts";
import { registerCreatePortalSession } from "./create-portal-session.ts";

export function registerBillingRoutes(api: OpenAPIHono<AppEnv>): void {
  registerCreateCheckoutSession(api);
  registerCreatePortalSession(api);
}
