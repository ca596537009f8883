import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import {
  AuthorizeBody,
  AuthorizeResultSchema,
  authorizeInput,
  toAuthorizeResult,
} from "../../schemas/authorize.ts";
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
    "and forwards `headers` to its end user. See docs/rate-limits.md. Served in front of the framework " +
    "(docs/adr/0004-authorize-fast-path.md) with the same answers.",
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
    const decision = await c.var.services.authorize.authorize(authorizeInput(c.req.valid("json")));
    return c.json(toAuthorizeResult(decision), 200);
  });
}
