import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { ApiKeySchema, toApiKeyResponse } from "../../schemas/api-key.ts";
import { errorResponses, idParam, OrgIdParams } from "../../schemas/common.ts";

export const ApiKeyParams = OrgIdParams.extend({
  key_id: idParam("key_id", "key_01jd0v4n6qf9yb5c8h2m3k7x1z"),
});

const route = createRoute({
  operationId: "getApiKey",
  method: "get",
  path: "/v1/organizations/{org_id}/api-keys/{key_id}",
  tags: ["API keys"],
  summary: "Get an API key",
  ...guarded({ kind: "org", scope: "keys:read" }),
  request: { params: ApiKeyParams },
  responses: {
    200: { description: "The API key", content: { "application/json": { schema: ApiKeySchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetApiKey(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, key_id } = c.req.valid("param");
    const key = await c.var.services.apiKeys.get(org_id, key_id);
    return c.json(toApiKeyResponse(key, c.var.services.apiKeys.now()), 200);
  });
}
