import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import {
  ApiKeySchema,
  toApiKeyResponse,
  toUpdateApiKeyInput,
  UpdateApiKeyBody,
} from "../../schemas/api-key.ts";
import { errorResponses } from "../../schemas/common.ts";
import { ApiKeyParams } from "./get-api-key.ts";

const route = createRoute({
  operationId: "updateApiKey",
  method: "patch",
  path: "/v1/organizations/{org_id}/api-keys/{key_id}",
  tags: ["API keys"],
  summary: "Change a key's name, description, scopes, expiry, rate-limit overrides or metadata",
  ...guarded({ kind: "org", scope: "keys:write" }),
  request: {
    params: ApiKeyParams,
    body: { required: true, content: { "application/json": { schema: UpdateApiKeyBody } } },
  },
  responses: {
    200: { description: "The API key", content: { "application/json": { schema: ApiKeySchema } } },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateApiKey(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, key_id } = c.req.valid("param");
    const key = await c.var.services.apiKeys.update(
      c.var.ctx,
      org_id,
      key_id,
      toUpdateApiKeyInput(c.req.valid("json")),
    );
    return c.json(toApiKeyResponse(key, c.var.services.apiKeys.now()), 200);
  });
}
