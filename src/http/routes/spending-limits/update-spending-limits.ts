import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import {
  SpendingLimitsSchema,
  toSpendingLimitsInput,
  toSpendingLimitsResponse,
  UpdateSpendingLimitsBody,
} from "../../schemas/spending-limits.ts";

const route = createRoute({
  operationId: "updateSpendingLimits",
  method: "put",
  path: "/v1/organizations/{org_id}/spending-limits",
  tags: ["Billing"],
  summary: "Set the organization's monthly spending limits and alert thresholds",
  description:
    "Replaces the whole object; absent fields take their defaults. `soft_limit` may not be above `hard_limit`. " +
    "Limits count credits used per billing period; `unit: currency` is refused (422 `spending_unit_unsupported`) " +
    "while the catalog sets no price per credit. With `hard_limit_action: block`, reaching the hard limit makes " +
    "authorize answer `spending_limit_reached` and billable routes 402 until the next period or a higher limit.",
  ...guarded({ kind: "org", scope: "billing:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: UpdateSpendingLimitsBody } } },
  },
  responses: {
    200: {
      description: "The limits after the change",
      content: { "application/json": { schema: SpendingLimitsSchema } },
    },
    ...errorResponses(403, 404, 413, 415, 422),
  },
});

export function registerUpdateSpendingLimits(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const limits = await c.var.services.spendingLimits.set(
      c.var.ctx,
      org_id,
      toSpendingLimitsInput(c.req.valid("json")),
    );
    return c.json(toSpendingLimitsResponse(limits), 200);
  });
}
