import packageJson from "../package.json" with { type: "json" };
import { createAlertsService } from "./domain/alerts/alerts.service.ts";
import { createApiKeysService, type KeyPrefixes } from "./domain/api-keys/api-keys.service.ts";
import { createKeyUsageTracker } from "./domain/api-keys/key-usage.ts";
import { createAuditService } from "./domain/audit/audit.service.ts";
import { createAuthenticator } from "./domain/auth/authenticator.ts";
import type { IdentityVerifier } from "./domain/auth/identity.ts";
import { createAuthorizeService } from "./domain/authorize/authorize.service.ts";
import { observedAuthorize } from "./domain/authorize/observed-authorize.ts";
import type { OrgChangeSource } from "./domain/authorize/org-changes.ts";
import { createBillingService } from "./domain/billing/billing.service.ts";
import { createStripeWebhooksService } from "./domain/billing/stripe-webhooks.service.ts";
import { createCatalogService } from "./domain/catalog/catalog.service.ts";
import type { Catalog } from "./domain/catalog/catalog.types.ts";
import { createCreditsService } from "./domain/credits/credits.service.ts";
import { createIdempotencyService } from "./domain/idempotency/idempotency.service.ts";
import { createIntegrationsService } from "./domain/integrations/integrations.service.ts";
import type { IntegrationProbes, SecretSealer } from "./domain/integrations/integrations.types.ts";
import { createInvitationsService } from "./domain/invitations/invitations.service.ts";
import { createMembersService } from "./domain/members/members.service.ts";
import { bindableTelemetry } from "./domain/observability/telemetry.ts";
import { createOrgsService } from "./domain/orgs/orgs.service.ts";
import { createProjectsService } from "./domain/projects/projects.service.ts";
import { createQuotasService } from "./domain/quotas/quotas.service.ts";
import type { RateLimiter } from "./domain/rate-limits/rate-limiter.ts";
import { createRateLimitsService } from "./domain/rate-limits/rate-limits.service.ts";
import { createSpendingLimitsService } from "./domain/spending-limits/spending-limits.service.ts";
import { createSubscriptionsService } from "./domain/subscriptions/subscriptions.service.ts";
import { createUsageService, type UsageService } from "./domain/usage/usage.service.ts";
import type { WebhookSender } from "./domain/webhooks/sender.ts";
import { createWebhooksService } from "./domain/webhooks/webhooks.service.ts";
import type { DeliveryState } from "./domain/webhooks/webhooks.types.ts";
import type { Services } from "./http/env.ts";
import { createOrgMetrics } from "./infra/metrics-export/org-metrics.ts";
import { createSecretBox, generateSecretKey, parseSecretKeys } from "./infra/secret-box.ts";
import { createStripeProvider, createStripeWebhookVerifier, type StripeConfig } from "./infra/stripe.ts";
import { createWebhookSender } from "./infra/webhook-sender.ts";
import type { Clock } from "./lib/clock.ts";
import type { Database } from "./store/db.ts";
import { createMetricsExportStore } from "./store/metrics-export.store.pg.ts";

/** PUBLIC_URL's own default (config.ts) with the default port. */
const DEFAULT_PUBLIC_URL = "http://localhost:8080";

/** Build every service over one database. Shared by the server and the test harness. */
export function createServices(
  database: Database,
  options: {
    clock: Clock;
    prefixes: KeyPrefixes;
    identity: IdentityVerifier | undefined;
    /** Where links in emails point (PUBLIC_URL); tests that do not read emails may leave it out. */
    publicUrl?: string;
    /** The catalog loaded at start; its plans are synced into plan_versions before services are built. */
    catalog: Catalog;
    /** Stripe (STRIPE_*); left out or without secrets, the billing routes answer 409. */
    stripe?: StripeConfig;
    /** Counts requests per org and category (memory or Redis, chosen in main.ts). */
    rateLimiter: RateLimiter;
    /** Organization changes from every process: with it, authorize caches keys (services.authorize.start()). */
    orgChanges?: OrgChangeSource;
    /** Told of failures of work that follows an answered request (an alert check after a debit). */
    onBackgroundError?: (err: unknown) => void;
    /** Usage ingestion: how late an event may arrive, and how many months raw events are kept. */
    usage?: { lateWindowHours: number; retentionMonths: number };
    /**
     * Outbound webhooks. `allowPrivate` (WEBHOOK_ALLOW_PRIVATE, default false) lets endpoints be http:// and
     * private or loopback addresses; `sender` replaces the HTTP client; `attemptTimeoutMs` shortens the 15 s
     * attempt timeout (tests of timeouts).
     */
    webhooks?: {
      allowPrivate: boolean;
      sender?: WebhookSender;
      attemptTimeoutMs?: number;
      /** The delivery engine's own connections (claims, outcomes); the main pool's when left out. */
      engineDatabase?: Database;
      /** Counts attempts by the state they left the delivery in (the /metrics counter). */
      onOutcomes?: (state: DeliveryState, count: number) => void;
    };
    /**
     * The per-organization observability export's configuration. `sealer` seals the tokens at rest (the
     * server's is ORGPLANE_SECRET_KEY's, checked against the database at start; left out, a key of this
     * process alone, which nothing it seals outlives); `allowPrivate` (INTEGRATIONS_ALLOW_PRIVATE, default
     * false) lets endpoints be http:// and private or loopback addresses; `probes` send the test sample (the
     * exporters', also set later through `integrations.setProbes`); `activeCacheMs` shortens how long the
     * exporters' read is cached.
     */
    integrations?: {
      sealer?: SecretSealer;
      allowPrivate: boolean;
      probes?: IntegrationProbes;
      activeCacheMs?: number;
    };
  },
): Services {
  const { stores, transactor: db } = database;
  const { clock, prefixes } = options;
  // Authorize decisions and counted API requests, for the per-org export (bound once the exporters start).
  const telemetry = bindableTelemetry();
  // Each organization's own series: the metrics export's telemetry sink, read by GET …/metrics and pushed by
  // the remote-write exporter (main.ts).
  const orgMetrics = createOrgMetrics({
    store: createMetricsExportStore(database.db, options.catalog.meters),
    clock,
  });
  // One per process: authentication records each key's last use here; main.ts flushes it in batches.
  const keyUsage = createKeyUsageTracker({ store: stores.apiKeys, clock });
  const catalog = createCatalogService({ store: stores.planVersions, catalog: options.catalog });
  const subscriptions = createSubscriptionsService({ db, stores, catalog, clock });
  // Create paths count against the plan inside their own transaction, with the organization locked.
  // Product-owned quotas read their use from the usage rollups (bound once the usage service exists).
  let usage: UsageService | undefined;
  const quotas = createQuotasService({
    db,
    stores,
    subscriptions,
    clock,
    productUsage: (orgId, quota) => usage?.quotaUsed(orgId, quota) ?? Promise.resolve(undefined),
    knownQuotas: new Set([
      ...options.catalog.plans.flatMap((p) => Object.keys(p.quotas)),
      ...options.catalog.meters.flatMap((m) => (m.quota === null ? [] : [m.quota])),
    ]),
  });
  const rateLimits = createRateLimitsService({
    db,
    stores,
    subscriptions,
    catalog,
    limiter: options.rateLimiter,
    clock,
  });
  // Alerts: recorded once per org, type and period; delivered by a pg-boss job (startJobs sets the dispatcher).
  const alerts = createAlertsService({
    db,
    stores,
    subscriptions,
    catalog,
    clock,
    publicUrl: (options.publicUrl ?? DEFAULT_PUBLIC_URL).replace(/\/+$/, ""),
  });
  const spendingLimits = createSpendingLimitsService({
    db,
    stores,
    alerts,
    clock,
    creditPrice: options.catalog.creditPrice,
  });
  const credits = createCreditsService({
    db,
    stores,
    subscriptions,
    catalog,
    clock,
    creditPrice: options.catalog.creditPrice?.amount,
    // A new credit period: the `usage_reset` alert, once per org and period (the alerts table's unique key).
    onPeriodReset: async (orgId, period) => {
      await alerts.fire(orgId, "usage_reset", period.start, {
        period_start: period.start.toISOString(),
        period_end: period.end.toISOString(),
      });
    },
  });
  usage = createUsageService({
    db,
    stores,
    catalogFile: options.catalog,
    subscriptions,
    credits,
    spending: spendingLimits,
    quotas,
    clock,
    lateWindowMs: (options.usage?.lateWindowHours ?? 168) * 3_600_000,
    retentionMonths: options.usage?.retentionMonths ?? 13,
    ...(options.onBackgroundError === undefined ? {} : { onBackgroundError: options.onBackgroundError }),
    // Called only while a report renders, after `webhooks` below exists.
    webhookDeliveryRate7d: (orgId) => webhooks.deliveryRate7d(orgId),
  });
  const allowPrivate = options.webhooks?.allowPrivate ?? false;
  const webhooks = createWebhooksService({
    db,
    stores,
    ...(options.webhooks?.engineDatabase === undefined
      ? {}
      : { queue: options.webhooks.engineDatabase.stores.webhooks }),
    clock,
    sender: options.webhooks?.sender ?? createWebhookSender({ allowPrivate }),
    allowPrivate,
    userAgent: `Orgplane-Webhooks/${packageJson.version}`,
    ...(options.webhooks?.attemptTimeoutMs === undefined
      ? {}
      : { attemptTimeoutMs: options.webhooks.attemptTimeoutMs }),
    ...(options.onBackgroundError === undefined ? {} : { onError: options.onBackgroundError }),
    ...(options.webhooks?.onOutcomes === undefined ? {} : { onOutcomes: options.webhooks.onOutcomes }),
  });
  const integrations = createIntegrationsService({
    db,
    stores,
    clock,
    sealer: options.integrations?.sealer ?? createSecretBox(parseSecretKeys(generateSecretKey())),
    allowPrivate: options.integrations?.allowPrivate ?? false,
    ...(options.integrations?.probes === undefined ? {} : { probes: options.integrations.probes }),
    ...(options.integrations?.activeCacheMs === undefined
      ? {}
      : { activeCacheMs: options.integrations.activeCacheMs }),
    ...(options.onBackgroundError === undefined ? {} : { onError: options.onBackgroundError }),
  });
  return {
    usage,
    webhooks,
    integrations,
    orgs: createOrgsService({ db, stores, clock, plans: catalog }),
    apiKeys: createApiKeysService({ db, stores, clock, prefixes, keyUsage, quotas }),
    audit: createAuditService({ stores }),
    idempotency: createIdempotencyService({ store: stores.idempotency, clock }),
    authenticator: createAuthenticator({ stores, clock, prefixes, identity: options.identity, keyUsage }),
    members: createMembersService({ db, stores, clock }),
    invitations: createInvitationsService({
      db,
      stores,
      clock,
      quotas,
      publicUrl: (options.publicUrl ?? DEFAULT_PUBLIC_URL).replace(/\/+$/, ""),
    }),
    projects: createProjectsService({ db, stores, clock, quotas }),
    catalog,
    subscriptions,
    quotas,
    rateLimits,
    credits,
    authorize: observedAuthorize(
      createAuthorizeService({
        keys: stores.apiKeys,
        rateLimits,
        keyUsage,
        credits,
        spending: spendingLimits,
        ...(options.onBackgroundError === undefined ? {} : { onAlertCheckError: options.onBackgroundError }),
        prefixes,
        clock,
        orgChanges: options.orgChanges,
      }),
      telemetry,
      clock,
    ),
    telemetry,
    orgMetrics,
    billing: createBillingService({
      db,
      stores,
      clock,
      provider: createStripeProvider(options.stripe),
    }),
    stripeWebhooks: createStripeWebhooksService({
      db,
      clock,
      fallbackPlanKey: options.catalog.fallbackPlan,
      verifier: createStripeWebhookVerifier(options.stripe),
    }),
    spendingLimits,
    alerts,
  };
}
