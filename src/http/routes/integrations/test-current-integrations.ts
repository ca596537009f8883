import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { credentialOrgId } from "../../../domain/auth/access.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { IntegrationTestResultsSchema, toIntegrationTestResponse } from "../../schemas/integrations.ts";
import { TEST_INTEGRATIONS_DESCRIPTION } from "./test-integrations.ts";

const route = createRoute({
  operationId: "testCurrentIntegrations",
  method: "post",
  path: "/v1/organization/integrations/test",
  tags: ["Integrations"],
  summary: "Send one sample to each integration of the presenting key's organization now",
  description: TEST_INTEGRATIONS_DESCRIPTION,
  ...guarded({ kind: "org", scope: "orgs:write" }),
  responses: {
    200: {
      description: "What each endpoint answered",
      content: { "application/json": { schema: IntegrationTestResultsSchema } },
    },
    ...errorResponses(403, 409, 413, 415, 422),
  },
});

export function registerTestCurrentIntegrations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const orgId = credentialOrgId(c.var.principal);
    const results = await c.var.services.integrations.test(orgId);
    return c.json(toIntegrationTestResponse(orgId, results), 200);
  });
}
