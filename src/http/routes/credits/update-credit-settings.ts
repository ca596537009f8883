import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { CreditSettingsSchema, UpdateCreditSettingsBody } from "../../schemas/credits.ts";

const route = createRoute({
  operationId: "updateCreditSettings",
  method: "put",
  path: "/v1/organizations/{org_id}/credits/settings",
  tags: ["Credits"],
  summary: "Set the organization's overdraft",
  description:
    "Operator only. Debits may take the balance down to `-overdraft` (default 0); the part no grant covers " +
    "is recorded on the debit and repaid by the next grant. Lowering it below what the balance already owes " +
    "is 409 `insufficient_credits`.",
  ...guarded({ kind: "operator" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: UpdateCreditSettingsBody } } },
  },
  responses: {
    200: { description: "The settings", content: { "application/json": { schema: CreditSettingsSchema } } },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateCreditSettings(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const account = await c.var.services.credits.setOverdraft(
      c.var.ctx,
      org_id,
      c.req.valid("json").overdraft,
    );
    return c.json({ object: "credit_settings" as const, org_id, overdraft: account.overdraft }, 200);
  });
}
