import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { VerifyKeyBody, VerifyKeyResultSchema } from "../../schemas/api-key.ts";
import { errorResponses } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "verifyApiKey",
  method: "post",
  path: "/v1/keys/verify",
  tags: ["API keys"],
  summary:
    "Check an organization key: its identity, or why it is refused (for products that verify keys themselves)",
  ...guarded({ kind: "operator" }),
  request: {
    body: { required: true, content: { "application/json": { schema: VerifyKeyBody } } },
  },
  responses: {
    200: {
      description: "The verdict: valid with the key's identity, or the reason it is refused",
      content: { "application/json": { schema: VerifyKeyResultSchema } },
    },
    ...errorResponses(403, 413, 415, 422),
  },
});

export function registerVerifyApiKey(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const result = await c.var.services.apiKeys.verify(c.req.valid("json").key);
    if (!result.valid) {
      return c.json({ valid: false as const, reason: result.reason }, 200);
    }
    const { key } = result;
    return c.json(
      {
        valid: true as const,
        key_id: key.id,
        org_id: key.orgId,
        project_id: key.projectId,
        scopes: key.scopes,
        environment: key.environment,
        expires_at: key.expiresAt?.toISOString() ?? null,
      },
      200,
    );
  });
}
