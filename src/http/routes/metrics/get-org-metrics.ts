import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";

/** The Prometheus text exposition format's media type, as scrapers ask for and expect it. */
const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

const route = createRoute({
  operationId: "getOrgMetrics",
  method: "get",
  path: "/v1/organizations/{org_id}/metrics",
  tags: ["Integrations"],
  summary: "The organization's own metrics, in the Prometheus text format",
  description:
    "For organizations that scrape instead of configuring a Prometheus integration (push): the same " +
    "series the remote-write export carries (docs/integrations.md), every one labelled with `org_id`. " +
    "Counters kept in memory (`orgplane_requests_total`, `orgplane_authorize_decisions_total`, " +
    "`orgplane_rate_limit_utilization`) are the answering server process's, labelled with its `instance`: " +
    "behind a load balancer a scrape sees one process, so with several processes use the push integration " +
    "(every process pushes its own) or scrape each process. Credits, usage, quotas and webhook figures are " +
    "read from the database on every scrape.",
  ...guarded({ kind: "org", scope: "usage:read" }),
  request: { params: OrgIdParams },
  responses: {
    200: {
      description: "The organization's series (text exposition format 0.0.4)",
      content: {
        "text/plain": {
          schema: z
            .string()
            .openapi({ example: 'orgplane_credits_balance{org_id="org_01jd0v4n6qf9yb5c8h2m3k7x1z"} 4200\n' }),
        },
      },
    },
    ...errorResponses(403, 404),
  },
});

export function registerGetOrgMetrics(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    // An unknown organization is a 404 (the operator may name any id), not an empty page.
    await c.var.services.orgs.get(org_id);
    const text = await c.var.services.orgMetrics.render(org_id);
    return c.text(text, 200, { "Content-Type": EXPOSITION_CONTENT_TYPE });
  });
}
