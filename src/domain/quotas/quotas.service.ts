import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import { creditPeriodOf } from "../alerts/alert-period.ts";
import { recordAlert } from "../alerts/alerts.service.ts";
import type { AlertType } from "../alerts/alerts.types.ts";
import type { PlanVersion } from "../catalog/catalog.types.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Organization } from "../orgs/orgs.types.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import type { OwnedQuota } from "../subscriptions/subscriptions.store.ts";
import type { Subscription } from "../subscriptions/subscriptions.types.ts";
import { emitEvent } from "../webhooks/event-data.ts";
import type { QuotaDecision, QuotaStatus } from "./quotas.types.ts";

/** Counts Orgplane keeps in its own tables; every other quota's use is the product's, fed by the usage API. */
export const OWNED_QUOTAS: readonly OwnedQuota[] = ["members", "projects", "api_keys", "invitations"];

export function isOwnedQuota(quota: string): quota is OwnedQuota {
  return (OWNED_QUOTAS as readonly string[]).includes(quota);
}

/** Shares of a count quota's limit at which a create records an alert (compared exactly, in integers). */
export const QUOTA_ALERT_THRESHOLDS = [
  { percent: 80, type: "quota_80" },
  { percent: 95, type: "quota_95" },
] as const satisfies readonly { percent: number; type: AlertType }[];

/** The quota alert types due when `used` of `limit` is in use (every threshold reached, lowest first). */
export function quotaAlertsDue(used: number, limit: number): AlertType[] {
  if (limit <= 0) {
    return [];
  }
  return QUOTA_ALERT_THRESHOLDS.filter((t) => used * 100 >= t.percent * limit).map((t) => t.type);
}

function decide(quota: string, limit: number | null, current: number, delta: number): QuotaDecision {
  if (limit === null || current + delta <= limit) {
    return { allowed: true, quota, limit, current };
  }
  return { allowed: false, quota, limit, current };
}

export function quotaExceeded(decision: Extract<QuotaDecision, { allowed: false }>): AppError {
  return new AppError(
    "quota_exceeded",
    `The plan allows ${decision.limit} ${decision.quota}; the organization has ${decision.current}`,
    { details: { quota: decision.quota, limit: decision.limit, current: decision.current } },
  );
}

/** What a create admitted by `enforce` will bring its quota to; undefined when the plan does not limit it. */
export type QuotaAdmission =
  | {
      orgId: string;
      quota: string;
      used: number;
      /** What the create adds: `used - delta` was in use before it. */
      delta: number;
      limit: number;
      plan: string;
      subscription: Subscription;
    }
  | undefined;

/** The stores quota alerts and their webhook events are written through (the caller's transaction). */
type AlertStores = Pick<Stores, "alerts" | "webhooks">;

/** What a create path calls inside its transaction, after locking the organization row. */
export type QuotaGuard = {
  /** Throws 403 `quota_exceeded` when adding `delta` would pass the plan's limit. */
  enforce(stores: Stores, orgId: string, quota: OwnedQuota, delta?: number): Promise<QuotaAdmission>;
  /**
   * After the create's rows are written, in the same transaction: record `quota_80` / `quota_95` when the
   * create brought the quota to that share of its limit (so only a create that commits counts), and emit
   * `quota.exceeded` when it filled the quota (the next create is refused). The alerts sweep delivers the
   * alerts.
   */
  recordAlerts(stores: AlertStores, admission: QuotaAdmission): Promise<void>;
};

/** The organization with its plan, subscription and quotas: the one read behind GET /organizations/{id}. */
export type OrganizationView = {
  org: Organization;
  plan: PlanVersion;
  subscription: Subscription;
  quotas: QuotaStatus[];
};

export function createQuotasService(deps: {
  /** Alerts recorded outside a create (usage-fed quotas) get a transaction of their own, with their event. */
  db: Transactor;
  stores: Pick<Stores, "orgs" | "quotaUsage" | "alerts">;
  subscriptions: Pick<SubscriptionsService, "current" | "currentIn">;
  clock: Clock;
  /**
   * The use of a product-owned quota that a meter counts against (the usage service, bound after both
   * are built); undefined when no meter does, and the quota then reads 0.
   */
  productUsage?: (orgId: string, quota: string) => Promise<number | undefined>;
  /** Quotas some plan of the catalog names or some meter counts against; any other is a 404. */
  knownQuotas?: ReadonlySet<string>;
}) {
  async function usage(stores: Pick<Stores, "quotaUsage">, orgId: string, quota: string): Promise<number> {
    if (isOwnedQuota(quota)) {
      return stores.quotaUsage.count(orgId, quota, deps.clock.now());
    }
    return (await deps.productUsage?.(orgId, quota)) ?? 0;
  }

  async function statuses(orgId: string, plan: PlanVersion): Promise<QuotaStatus[]> {
    const entries = Object.entries(plan.definition.quotas);
    return Promise.all(
      entries.map(async ([quota, limit]) => ({
        quota,
        limit,
        current: await usage(deps.stores, orgId, quota),
        source: "plan" as const,
      })),
    );
  }

  /** `quota_80` / `quota_95` as `used` of `limit` requires (each with its webhook event, in `stores`' transaction). */
  async function recordThresholdAlerts(
    stores: AlertStores,
    figures: { orgId: string; quota: string; used: number; limit: number; plan: string },
    periodStart: Date,
  ): Promise<void> {
    const { orgId, quota, used, limit, plan } = figures;
    for (const type of quotaAlertsDue(used, limit)) {
      // ON CONFLICT DO NOTHING: each type at most once per organization and period, whichever quota.
      await recordAlert(
        stores,
        { orgId, type, periodStart, details: { quota, used, limit, plan } },
        deps.clock,
      );
    }
  }

  async function recordAlerts(stores: AlertStores, admission: QuotaAdmission): Promise<void> {
    if (admission === undefined) {
      return;
    }
    // The credit period, as every alert: the alerts table's key is (org_id, type, period_start).
    const periodStart = creditPeriodOf(admission.subscription, deps.clock.now()).start;
    await recordThresholdAlerts(stores, admission, periodStart);
    const { orgId, quota, used, delta, limit, plan } = admission;
    // Filled by this create: below the limit before it, at (or past) it now. Once per filling, per quota —
    // a quota emptied and filled again announces it again; one that stays full announces nothing more.
    if (limit > 0 && used >= limit && used - delta < limit) {
      await emitEvent(
        stores,
        orgId,
        "quota.exceeded",
        {
          org_id: orgId,
          quota,
          used,
          limit,
          plan,
          threshold_percent: 100,
          period_start: periodStart.toISOString(),
          alert_id: null,
        },
        deps.clock,
      );
    }
  }

  return {
    async list(orgId: string): Promise<QuotaStatus[]> {
      await loadOrg(deps.stores, orgId);
      const { plan } = await deps.subscriptions.current(orgId);
      return statuses(orgId, plan);
    },

    async organizationView(orgId: string): Promise<OrganizationView> {
      const org = await loadOrg(deps.stores, orgId);
      const { plan, subscription } = await deps.subscriptions.current(orgId);
      return { org, plan, subscription, quotas: await statuses(orgId, plan) };
    },

    /**
     * May the organization add `delta` of `quota`? Not locked: a product checking its own quotas
     * (datasets, storage…) tolerates the race its own writes leave; Orgplane's counts use `enforce`.
     */
    async check(orgId: string, quota: string, delta: number): Promise<QuotaDecision> {
      await loadOrg(deps.stores, orgId);
      if (!isOwnedQuota(quota) && deps.knownQuotas?.has(quota) !== true) {
        throw new AppError(
          "not_found",
          `Quota '${quota.slice(0, 64)}' is in no plan and counted by no meter`,
        );
      }
      const { plan } = await deps.subscriptions.current(orgId);
      const limit = Object.hasOwn(plan.definition.quotas, quota) ? plan.definition.quotas[quota] : undefined;
      if (limit === undefined || limit === null) {
        // A quota the plan does not name is not limited by it.
        return { allowed: true, quota, limit: null, current: await usage(deps.stores, orgId, quota) };
      }
      return decide(quota, limit, await usage(deps.stores, orgId, quota), delta);
    },

    async enforce(stores: Stores, orgId: string, quota: OwnedQuota, delta = 1): Promise<QuotaAdmission> {
      const { plan, subscription } = await deps.subscriptions.currentIn(stores, orgId);
      const limit = Object.hasOwn(plan.definition.quotas, quota) ? plan.definition.quotas[quota] : undefined;
      if (limit === undefined || limit === null) {
        return undefined;
      }
      const decision = decide(quota, limit, await usage(stores, orgId, quota), delta);
      if (!decision.allowed) {
        throw quotaExceeded(decision);
      }
      return { orgId, quota, used: decision.current + delta, delta, limit, plan: plan.key, subscription };
    },

    /**
     * After usage counted against `quota` committed: record `quota_80` / `quota_95` when its use reached
     * that share of the plan's limit (once per organization, type and period, as every alert).
     */
    async recordUsageAlerts(orgId: string, quota: string): Promise<void> {
      const { plan, subscription } = await deps.subscriptions.current(orgId);
      const limit = Object.hasOwn(plan.definition.quotas, quota) ? plan.definition.quotas[quota] : undefined;
      if (limit === undefined || limit === null) {
        return;
      }
      const used = await usage(deps.stores, orgId, quota);
      if (quotaAlertsDue(used, limit).length === 0) {
        return;
      }
      const figures = { orgId, quota, used, limit, plan: plan.key };
      const periodStart = creditPeriodOf(subscription, deps.clock.now()).start;
      // Only the thresholds: a product quota is the product's to refuse (no create of Orgplane's fills it).
      await deps.db.transaction((stores) => recordThresholdAlerts(stores, figures, periodStart));
    },

    recordAlerts,
  };
}

export type QuotasService = ReturnType<typeof createQuotasService>;
