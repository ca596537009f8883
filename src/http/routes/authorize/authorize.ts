import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { AuthorizeBody, AuthorizeResultSchema, toAuthorizeResult } from "../../schemas/authorize.ts";
import { errorResponses } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "authorize",
  method: "post",
  path: "/v1/authorize",
  tags: ["Authorize"],
  summary:
    "The product's per-request check: verify an end customer's key, its scope and credits, and count the " +
    "request against the organization's rate limit of a category",
  description:
    "Answers 200 with `allowed: false` and a `reason` for every denial; the caller decides what to return, " +
    "and forwards `headers` to its end user. See docs/rate-limits.md.",
  ...guarded({ kind: "operator" }),
  request: {
    body: { required: true, content: { "application/json": { schema: AuthorizeBody } } },
  },
  responses: {
    200: {
      description: "The decision",
      content: { "application/json": { schema: AuthorizeResultSchema } },
    },
    ...errorResponses(400, 403, 413, 415),
  },
});

export function registerAuthorize(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const body = c.req.valid("json");
    const decision = await c.var.services.authorize.authorize({
      key: body.key,
      category: body.category,
      cost: body.cost,
      scope: body.scope,
      credits: body.credits,
    });
    return c.json(toAuthorizeResult(decision), 200);
  });
}
