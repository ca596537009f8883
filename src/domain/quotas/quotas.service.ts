import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import type { PlanVersion } from "../catalog/catalog.types.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Organization } from "../orgs/orgs.types.ts";
import type { Stores } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import type { OwnedQuota } from "../subscriptions/subscriptions.store.ts";
import type { Subscription } from "../subscriptions/subscriptions.types.ts";
import type { QuotaDecision, QuotaStatus } from "./quotas.types.ts";

/** Counts Orgplane keeps in its own tables; every other quota's use is the product's, fed by the usage API. */
export const OWNED_QUOTAS: readonly OwnedQuota[] = ["members", "projects", "api_keys", "invitations"];

export function isOwnedQuota(quota: string): quota is OwnedQuota {
  return (OWNED_QUOTAS as readonly string[]).includes(quota);
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

/** What a create path calls inside its transaction, after locking the organization row. */
export type QuotaGuard = {
  /** Throws 403 `quota_exceeded` when adding `delta` would pass the plan's limit. */
  enforce(stores: Stores, orgId: string, quota: OwnedQuota, delta?: number): Promise<void>;
};

/** The organization with its plan, subscription and quotas: the one read behind GET /organizations/{id}. */
export type OrganizationView = {
  org: Organization;
  plan: PlanVersion;
  subscription: Subscription;
  quotas: QuotaStatus[];
};

export function createQuotasService(deps: {
  stores: Pick<Stores, "orgs" | "quotaUsage">;
  subscriptions: Pick<SubscriptionsService, "current" | "planIn">;
  clock: Clock;
}) {
  async function usage(stores: Pick<Stores, "quotaUsage">, orgId: string, quota: string): Promise<number> {
    // Product-owned quotas (datasets, chunks, storage…) read 0 until the usage API feeds them.
    return isOwnedQuota(quota) ? stores.quotaUsage.count(orgId, quota, deps.clock.now()) : 0;
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
      const { plan } = await deps.subscriptions.current(orgId);
      const limit = plan.definition.quotas[quota];
      if (limit === undefined || limit === null) {
        // A quota the plan does not name is not limited by it.
        return { allowed: true, quota, limit: null, current: await usage(deps.stores, orgId, quota) };
      }
      return decide(quota, limit, await usage(deps.stores, orgId, quota), delta);
    },

    async enforce(stores: Stores, orgId: string, quota: OwnedQuota, delta = 1): Promise<void> {
      const plan = await deps.subscriptions.planIn(stores, orgId);
      const limit = plan.definition.quotas[quota];
      if (limit === undefined || limit === null) {
        return;
      }
      const decision = decide(quota, limit, await usage(stores, orgId, quota), delta);
      if (!decision.allowed) {
        throw quotaExceeded(decision);
      }
    },
  };
}

export type QuotasService = ReturnType<typeof createQuotasService>;
