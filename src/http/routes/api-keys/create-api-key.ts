import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { CreateApiKeyBody, CreatedApiKeySchema, toApiKeyResponse } from "../../schemas/api-key.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "createApiKey",
  method: "post",
  path: "/v1/organizations/{org_id}/api-keys",
  tags: ["API keys"],
  summary: "Create an API key (organization-wide or for one project); the plaintext is returned once",
  ...guarded({ kind: "org", scope: "keys:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateApiKeyBody } } },
  },
  responses: {
    201: { description: "Created", content: { "application/json": { schema: CreatedApiKeySchema } } },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerCreateApiKey(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const { key, plaintext } = await c.var.services.apiKeys.create(c.var.ctx, org_id, {
      name: body.name,
      description: body.description,
      environment: body.environment,
      scopes: body.scopes,
      projectId: body.project_id,
      rateLimitOverrides: body.rate_limit_overrides,
      metadata: body.metadata,
      expiresAt:
        body.expires_at === undefined
          ? undefined
          : body.expires_at === null
            ? null
            : new Date(body.expires_at),
    });
    return c.json({ ...toApiKeyResponse(key, key.createdAt), key: plaintext }, 201);
  });
}
