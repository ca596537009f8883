import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { credentialOrgId } from "../../../domain/auth/access.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import {
  IntegrationsSchema,
  toIntegrationsInput,
  toIntegrationsResponse,
  UpdateIntegrationsBody,
} from "../../schemas/integrations.ts";
import { UPDATE_INTEGRATIONS_DESCRIPTION } from "./update-integrations.ts";

const route = createRoute({
  operationId: "updateCurrentIntegrations",
  method: "put",
  path: "/v1/organization/integrations",
  tags: ["Integrations"],
  summary: "Set or remove the Prometheus and Loki credentials of the presenting key's organization",
  description: UPDATE_INTEGRATIONS_DESCRIPTION,
  ...guarded({ kind: "org", scope: "orgs:write" }),
  request: { body: { required: true, content: { "application/json": { schema: UpdateIntegrationsBody } } } },
  responses: {
    200: {
      description: "The organization's integrations after the change",
      content: { "application/json": { schema: IntegrationsSchema } },
    },
    ...errorResponses(403, 409, 413, 415),
  },
});

export function registerUpdateCurrentIntegrations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const orgId = credentialOrgId(c.var.principal);
    const integrations = await c.var.services.integrations.put(
      c.var.ctx,
      orgId,
      toIntegrationsInput(c.req.valid("json")),
    );
    return c.json(toIntegrationsResponse(orgId, integrations), 200);
  });
}
