import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { AlertListSchema, AlertsQuery, toAlertEmails, toAlertResponse } from "../../schemas/alerts.ts";
import { errorResponses, OrgIdParams, toList } from "../../schemas/common.ts";

const route = createRoute({
  operationId: "listAlerts",
  method: "get",
  path: "/v1/organizations/{org_id}/alerts",
  tags: ["Billing"],
  summary: "Alerts sent to the organization: this period's at a glance, and every one, newest first",
  description:
    "`alert_emails` maps each alert type to when its email was sent in the current billing period (null: not " +
    "fired), the shape of the LLM-router reference; `data` pages every alert record. Each type fires at most " +
    "once per organization and period.",
  ...guarded({ kind: "org", scope: "billing:read" }),
  request: { params: OrgIdParams, query: AlertsQuery },
  responses: {
    200: { description: "The alerts", content: { "application/json": { schema: AlertListSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerListAlerts(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const { limit, cursor } = c.req.valid("query");
    const { alerts } = c.var.services;
    const [emails, page] = [await alerts.alertEmails(org_id), await alerts.list(org_id, { limit, cursor })];
    return c.json(
      {
        period_start: emails.periodStart.toISOString(),
        alert_emails: toAlertEmails(emails),
        ...toList(page, toAlertResponse),
      },
      200,
    );
  });
}
