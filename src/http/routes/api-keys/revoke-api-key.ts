import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { ApiKeySchema, toApiKeyResponse } from "../../schemas/api-key.ts";
import { errorResponses } from "../../schemas/common.ts";
import { ApiKeyParams } from "./get-api-key.ts";

const route = createRoute({
  operationId: "revokeApiKey",
  method: "delete",
  path: "/v1/organizations/{org_id}/api-keys/{key_id}",
  tags: ["API keys"],
  summary: "Revoke an API key, at once and for good",
  ...guarded({ kind: "org", scope: "keys:write" }),
  request: { params: ApiKeyParams },
  responses: {
    200: { description: "The revoked API key", content: { "application/json": { schema: ApiKeySchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerRevokeApiKey(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, key_id } = c.req.valid("param");
    const key = await c.var.services.apiKeys.revoke(c.var.ctx, org_id, key_id);
    return c.json(toApiKeyResponse(key, c.var.services.apiKeys.now()), 200);
  });
}
