import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { QuotaCheckBody, QuotaCheckSchema } from "../../schemas/usage.ts";

const Params = z.object({
  org_id: z
    .string()
    .openapi({ param: { name: "org_id", in: "path" }, example: "org_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
  // Any text: a quota the catalog does not know is a 404, whatever it looks like.
  quota: z.string().openapi({ param: { name: "quota", in: "path" }, example: "storage_bytes" }),
});

const route = createRoute({
  operationId: "checkQuota",
  method: "post",
  path: "/v1/organizations/{org_id}/quotas/{quota}/check",
  tags: ["Subscriptions"],
  summary: "Would `delta` more of a quota fit the plan?",
  description:
    "For a product checking before it creates something its plan limits. Orgplane's own counts (members, " +
    "projects, api_keys, invitations) are counted now; a quota a meter counts against reads that meter's use " +
    "over the current billing period from the rollups, or the current total of a gauge meter. Not a " +
    "reservation: two checks may both pass. A quota neither in the plan nor counted by a meter is 404.",
  ...guarded({ kind: "org", scope: "usage:read" }),
  request: {
    params: Params,
    body: { required: false, content: { "application/json": { schema: QuotaCheckBody } } },
  },
  responses: {
    200: { description: "The answer", content: { "application/json": { schema: QuotaCheckSchema } } },
    ...errorResponses(403, 404, 415, 422),
  },
});

export function registerCheckQuota(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, quota } = c.req.valid("param");
    // The body is optional: without one, Hono hands over no parsed object and the default applies here.
    const delta = (c.req.valid("json") as { delta?: number } | undefined)?.delta ?? 1;
    const d = await c.var.services.quotas.check(org_id, quota, delta);
    return c.json(
      {
        allowed: d.allowed,
        quota: d.quota,
        limit: d.limit,
        current: d.current,
        requested: delta,
        remaining: d.limit === null ? null : Math.max(0, d.limit - d.current),
      },
      200,
    );
  });
}
