import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { RotateApiKeyBody, RotatedApiKeySchema, toApiKeyResponse } from "../../schemas/api-key.ts";
import { errorResponses } from "../../schemas/common.ts";
import { ApiKeyParams } from "./get-api-key.ts";

const route = createRoute({
  operationId: "rotateApiKey",
  method: "post",
  path: "/v1/organizations/{org_id}/api-keys/{key_id}/rotate",
  tags: ["API keys"],
  summary: "Replace a key with a new one; both work until the previous one expires",
  ...guarded({ kind: "org", scope: "keys:write" }),
  request: {
    params: ApiKeyParams,
    body: { required: false, content: { "application/json": { schema: RotateApiKeyBody } } },
  },
  responses: {
    201: {
      description: "The new key (plaintext shown once) and the previous one",
      content: { "application/json": { schema: RotatedApiKeySchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerRotateApiKey(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, key_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const { key, plaintext, previous } = await c.var.services.apiKeys.rotate(
      c.var.ctx,
      org_id,
      key_id,
      body.expire_previous_in_seconds ?? 0,
    );
    const now = c.var.services.apiKeys.now();
    return c.json(
      { ...toApiKeyResponse(key, now), key: plaintext, previous: toApiKeyResponse(previous, now) },
      201,
    );
  });
}
