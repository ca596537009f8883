import type { AlertsService } from "../domain/alerts/alerts.service.ts";
import type { ApiKeysService } from "../domain/api-keys/api-keys.service.ts";
import type { AuditService } from "../domain/audit/audit.service.ts";
import type { Authenticator } from "../domain/auth/authenticator.ts";
import type { Principal, RequestContext } from "../domain/auth/principal.ts";
import type { AuthorizeService } from "../domain/authorize/authorize.service.ts";
import type { BillingService } from "../domain/billing/billing.service.ts";
import type { StripeWebhooksService } from "../domain/billing/stripe-webhooks.service.ts";
import type { CatalogService } from "../domain/catalog/catalog.service.ts";
import type { CreditsService } from "../domain/credits/credits.service.ts";
import type { IdempotencyService } from "../domain/idempotency/idempotency.service.ts";
import type { IntegrationsService } from "../domain/integrations/integrations.service.ts";
import type { InvitationsService } from "../domain/invitations/invitations.service.ts";
import type { MembersService } from "../domain/members/members.service.ts";
import type { BindableTelemetry } from "../domain/observability/telemetry.ts";
import type { OrgsService } from "../domain/orgs/orgs.service.ts";
import type { ProjectsService } from "../domain/projects/projects.service.ts";
import type { QuotasService } from "../domain/quotas/quotas.service.ts";
import type { RateLimitsService } from "../domain/rate-limits/rate-limits.service.ts";
import type { SpendingLimitsService } from "../domain/spending-limits/spending-limits.service.ts";
import type { SubscriptionsService } from "../domain/subscriptions/subscriptions.service.ts";
import type { UsageService } from "../domain/usage/usage.service.ts";
import type { WebhooksService } from "../domain/webhooks/webhooks.service.ts";
import type { OrgMetrics } from "../infra/metrics-export/org-metrics.ts";

export type Services = {
  orgs: OrgsService;
  apiKeys: ApiKeysService;
  audit: AuditService;
  idempotency: IdempotencyService;
  authenticator: Authenticator;
  members: MembersService;
  invitations: InvitationsService;
  projects: ProjectsService;
  billing: BillingService;
  stripeWebhooks: StripeWebhooksService;
  catalog: CatalogService;
  subscriptions: SubscriptionsService;
  quotas: QuotasService;
  rateLimits: RateLimitsService;
  credits: CreditsService;
  authorize: AuthorizeService;
  spendingLimits: SpendingLimitsService;
  alerts: AlertsService;
  usage: UsageService;
  webhooks: WebhooksService;
  /** Each organization's Prometheus and Loki credentials, for the observability export. */
  integrations: IntegrationsService;
  /** Where request paths report decisions for the per-org observability export. */
  telemetry: BindableTelemetry;
  /** Each organization's own series (GET …/metrics, and the remote-write export's source). */
  orgMetrics: OrgMetrics;
};

export type AppEnv = {
  Variables: {
    requestId: string;
    services: Services;
    /** Set by the auth middleware on every /v1 route before any handler runs. */
    principal: Principal;
    ctx: RequestContext;
    /** The request body as requireJsonBody parsed it (undefined: no body), for handlers that check it by hand. */
    jsonBody: unknown;
  };
};
