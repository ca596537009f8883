import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerGetMe } from "./get-me.ts";

export function registerMeRoutes(api: OpenAPIHono<AppEnv>): void {
  registerGetMe(api);
}
