import type { AlertsStore } from "./alerts/alerts.store.ts";
import type { ApiKeysStore, OperatorKeysStore } from "./api-keys/api-keys.store.ts";
import type { AuditStore } from "./audit/audit.store.ts";
import type { BillingSyncStore } from "./billing/billing.types.ts";
import type { PlanVersionsStore } from "./catalog/catalog.store.ts";
import type { CreditsStore } from "./credits/credits.store.ts";
import type { IdempotencyStore } from "./idempotency/idempotency.store.ts";
import type { IntegrationsStore } from "./integrations/integrations.store.ts";
import type { InvitationsStore } from "./invitations/invitations.store.ts";
import type { MailOutboxStore } from "./mail/mail.store.ts";
import type { MembershipsStore, UsersStore } from "./members/members.store.ts";
import type { OrgsStore } from "./orgs/orgs.store.ts";
import type { ProjectsStore } from "./projects/projects.store.ts";
import type { RateLimitOverridesStore } from "./rate-limits/rate-limits.store.ts";
import type { SpendingLimitsStore } from "./spending-limits/spending-limits.store.ts";
import type { QuotaUsageStore, SubscriptionsStore } from "./subscriptions/subscriptions.store.ts";
import type { UsageStore } from "./usage/usage.store.ts";
import type { WebhooksStore } from "./webhooks/webhooks.store.ts";

/** Every store, bound to one connection or one transaction. */
export type Stores = {
  orgs: OrgsStore;
  apiKeys: ApiKeysStore;
  operatorKeys: OperatorKeysStore;
  audit: AuditStore;
  idempotency: IdempotencyStore;
  users: UsersStore;
  memberships: MembershipsStore;
  invitations: InvitationsStore;
  mailOutbox: MailOutboxStore;
  projects: ProjectsStore;
  billing: BillingSyncStore;
  planVersions: PlanVersionsStore;
  subscriptions: SubscriptionsStore;
  quotaUsage: QuotaUsageStore;
  rateLimitOverrides: RateLimitOverridesStore;
  spendingLimits: SpendingLimitsStore;
  alerts: AlertsStore;
  credits: CreditsStore;
  usage: UsageStore;
  webhooks: WebhooksStore;
  integrations: IntegrationsStore;
};

/**
 * Runs work in one database transaction: every store handed to `fn` writes through it, so a mutation
 * and its audit event commit or roll back together.
 */
export type Transactor = {
  transaction<T>(fn: (stores: Stores) => Promise<T>): Promise<T>;
};
