import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { ApiKeySchema, toApiKeyResponse } from "../../schemas/api-key.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, toList } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "listApiKeys",
  method: "get",
  path: "/v1/organizations/{org_id}/api-keys",
  tags: ["API keys"],
  summary: "List API keys, newest first (prefix and last four only)",
  ...guarded({ kind: "org", scope: "keys:read" }),
  request: {
    params: OrgIdParams,
    query: z.strictObject({
      ...ListQuery,
      include_revoked: z
        .enum(["true", "false"])
        .optional()
        .openapi({ description: "Include revoked keys (default false)" }),
    }),
  },
  responses: {
    200: {
      description: "A page of API keys",
      content: { "application/json": { schema: listOf(ApiKeySchema, "ApiKeyList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListApiKeys(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.apiKeys.list(org_id, {
      limit: q.limit,
      cursor: q.cursor,
      includeRevoked: q.include_revoked === "true",
    });
    const now = c.var.services.apiKeys.now();
    return c.json(
      toList(page, (k) => toApiKeyResponse(k, now)),
      200,
    );
  });
}
