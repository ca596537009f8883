import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./env.ts";
import { registerApiKeyRoutes } from "./routes/api-keys/index.ts";
import { registerAuditEventRoutes } from "./routes/audit-events/index.ts";
import { registerAuthorize } from "./routes/authorize/authorize.ts";
import { registerBillingRoutes } from "./routes/billing/index.ts";
import { registerCreditRoutes } from "./routes/credits/index.ts";
import { registerIntegrationRoutes } from "./routes/integrations/index.ts";
import { registerInvitationRoutes } from "./routes/invitations/index.ts";
import { registerMeRoutes } from "./routes/me/index.ts";
import { registerMemberRoutes } from "./routes/members/index.ts";
import { registerMetricsRoutes } from "./routes/metrics/index.ts";
import { registerOrganizationRoutes } from "./routes/organizations/index.ts";
import { registerPlanRoutes } from "./routes/plans/index.ts";
import { registerProjectRoutes } from "./routes/projects/index.ts";
import { registerQuotaRoutes } from "./routes/quotas/index.ts";
import { registerRateLimitRoutes } from "./routes/rate-limits/index.ts";
import { registerSpendingLimitRoutes } from "./routes/spending-limits/index.ts";
import { registerSubscriptionRoutes } from "./routes/subscriptions/index.ts";
import { registerUsageRoutes } from "./routes/usage/index.ts";
import { registerWebhookEndpointRoutes } from "./routes/webhook-endpoints/index.ts";
import { documentStripeWebhook } from "./routes/webhooks/receive-stripe-webhook.ts";
import { registerWebhookEvents } from "./schemas/webhook-events.ts";
import { validationFailed } from "./validation.ts";

export const API_INFO = {
  title: "Orgplane API",
  version: "0.1.0",
  description:
    "Organizations, members, API keys, plans, credits, rate limits, usage and webhooks for API-first products. " +
    "Errors are RFC 9457 problem documents with a stable `code`.",
};

/** Every /v1 route, with OpenAPI metadata and zod validation. Middleware and services come from app.ts. */
export function buildApi(): OpenAPIHono<AppEnv> {
  const api = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        throw validationFailed(result.target, result.error.issues);
      }
    },
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", {
    type: "http",
    scheme: "bearer",
    description:
      "An organization API key (`sk_live_…`), an operator key (`op_live_…`), or a member's sign-in token " +
      "(a JWT from the identity provider; see docs/roles.md)",
  });
  api.openAPIRegistry.registerComponent("securitySchemes", "apiKeyHeader", {
    type: "apiKey",
    in: "header",
    name: "X-API-Key",
  });
  registerMeRoutes(api);
  registerOrganizationRoutes(api);
  registerMemberRoutes(api);
  registerInvitationRoutes(api);
  registerApiKeyRoutes(api);
  registerProjectRoutes(api);
  registerAuditEventRoutes(api);
  registerSubscriptionRoutes(api);
  registerQuotaRoutes(api);
  registerRateLimitRoutes(api);
  registerAuthorize(api);
  registerPlanRoutes(api);
  registerBillingRoutes(api);
  registerCreditRoutes(api);
  registerSpendingLimitRoutes(api);
  registerUsageRoutes(api);
  registerWebhookEndpointRoutes(api);
  registerIntegrationRoutes(api);
  registerMetricsRoutes(api);
  // What Orgplane sends rather than serves: the event catalog, in the document's 3.1 `webhooks` section.
  registerWebhookEvents(api);
  // Served by app.ts outside the /v1 credential check (Stripe signs instead); listed here for OpenAPI.
  documentStripeWebhook(api);
  return api;
}

export function openApiDocument(api: OpenAPIHono<AppEnv>) {
  return api.getOpenAPI31Document({
    openapi: "3.1.0",
    info: API_INFO,
    security: [{ bearerAuth: [] }, { apiKeyHeader: [] }],
    tags: [
      { name: "Auth", description: "Who is calling" },
      { name: "Organizations", description: "Tenants" },
      { name: "Members", description: "People in an organization and their roles" },
      { name: "Invitations", description: "Asking someone by email to join an organization" },
      { name: "API keys", description: "Organization credentials" },
      { name: "Authorize", description: "The product's per-request check of an end customer's key" },
      { name: "Projects", description: "The metered child resources of an organization" },
      { name: "Audit", description: "Who changed what" },
      { name: "Subscriptions", description: "The plan an organization is on, its periods, and its quotas" },
      { name: "Plans", description: "The catalog: what organizations can subscribe to" },
      { name: "Billing", description: "Stripe: checkout and portal links, and Stripe's webhook" },
      { name: "Credits", description: "The credit ledger: balance, grants, debits, adjustments, periods" },
      {
        name: "Webhooks",
        description: "Signed event deliveries to the organization's endpoints, and their log",
      },
      {
        name: "Integrations",
        description:
          "The organization's own Prometheus and Loki: where its series and log lines are exported",
      },
    ],
  });
}
