import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { IntegrationTestResultsSchema, toIntegrationTestResponse } from "../../schemas/integrations.ts";

/** Shared with `POST /v1/organization/integrations/test`. */
export const TEST_INTEGRATIONS_DESCRIPTION =
  "Each configured integration gets one sample now (a remote-write of one series, a Loki push of one line), " +
  "in parallel; the answer is what each endpoint said (null: not configured). The result is recorded as the " +
  "integration's last success or last error. Waits for the endpoints: up to their timeout.";

const route = createRoute({
  operationId: "testIntegrations",
  method: "post",
  path: "/v1/organizations/{org_id}/integrations/test",
  tags: ["Integrations"],
  summary: "Send one sample to each configured integration now and answer what each endpoint said",
  description: TEST_INTEGRATIONS_DESCRIPTION,
  ...guarded({ kind: "org", scope: "orgs:write" }),
  request: { params: OrgIdParams },
  responses: {
    200: {
      description: "What each endpoint answered",
      content: { "application/json": { schema: IntegrationTestResultsSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerTestIntegrations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const results = await c.var.services.integrations.test(org_id);
    return c.json(toIntegrationTestResponse(org_id, results), 200);
  });
}
