import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { IntegrationsSchema, toIntegrationsResponse } from "../../schemas/integrations.ts";

const route = createRoute({
  operationId: "getIntegrations",
  method: "get",
  path: "/v1/organizations/{org_id}/integrations",
  tags: ["Integrations"],
  summary:
    "The organization's Prometheus and Loki export: where it goes and how it has gone (never the tokens)",
  description:
    "Per integration: the endpoint, the id, the token's last four characters, the last success, the last " +
    "error and how many batches (and Loki lines) were dropped. null: not configured.",
  ...guarded({ kind: "org", scope: "orgs:read" }),
  request: { params: OrgIdParams },
  responses: {
    200: {
      description: "The organization's integrations",
      content: { "application/json": { schema: IntegrationsSchema } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerGetIntegrations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const integrations = await c.var.services.integrations.get(org_id);
    return c.json(toIntegrationsResponse(org_id, integrations), 200);
  });
}
