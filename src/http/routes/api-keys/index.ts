import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerCreateApiKey } from "./create-api-key.ts";
import { registerGetApiKey } from "./get-api-key.ts";
import { registerListApiKeys } from "./list-api-keys.ts";
import { registerRevokeApiKey } from "./revoke-api-key.ts";
import { registerRotateApiKey } from "./rotate-api-key.ts";
import { registerUpdateApiKey } from "./update-api-key.ts";
import { registerVerifyApiKey } from "./verify-api-key.ts";

export function registerApiKeyRoutes(api: OpenAPIHono<AppEnv>): void {
  registerCreateApiKey(api);
  registerListApiKeys(api);
  registerGetApiKey(api);
  registerUpdateApiKey(api);
  registerRevokeApiKey(api);
  registerRotateApiKey(api);
  registerVerifyApiKey(api);
}
