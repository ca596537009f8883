import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  IntegrationsSchema,
  toIntegrationsInput,
  toIntegrationsResponse,
  UpdateIntegrationsBody,
} from "../../schemas/integrations.ts";

/** Shared with `PUT /v1/organization/integrations`: the same operation on the credential's own organization. */
export const UPDATE_INTEGRATIONS_DESCRIPTION =
  "Each of `prometheus` and `loki`: an object sets it (`token` may be left out to keep the stored one), " +
  "null removes it, absent leaves it unchanged. Tokens are stored encrypted and never answered (only " +
  "`token_last4`). Endpoints follow the webhook URL rules: https on a public host unless the server runs " +
  "with INTEGRATIONS_ALLOW_PRIVATE=true. Answers the integrations as GET does.";

const route = createRoute({
  operationId: "updateIntegrations",
  method: "put",
  path: "/v1/organizations/{org_id}/integrations",
  tags: ["Integrations"],
  summary: "Set or remove the organization's Prometheus remote-write and Loki push credentials",
  description: UPDATE_INTEGRATIONS_DESCRIPTION,
  ...guarded({ kind: "org", scope: "orgs:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: UpdateIntegrationsBody } } },
  },
  responses: {
    200: {
      description: "The organization's integrations after the change",
      content: { "application/json": { schema: IntegrationsSchema } },
    },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateIntegrations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const integrations = await c.var.services.integrations.put(
      c.var.ctx,
      org_id,
      toIntegrationsInput(c.req.valid("json")),
    );
    return c.json(toIntegrationsResponse(org_id, integrations), 200);
  });
}
