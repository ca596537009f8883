import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import type { JsonValue } from "../../lib/json.ts";
import { creditPeriodOf } from "../alerts/alert-period.ts";
import type { AlertsService } from "../alerts/alerts.service.ts";
import type { AlertType } from "../alerts/alerts.types.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import { type CreditLimits, evaluateSpending, spendingBlocked } from "./evaluate.ts";
import { canonicalDecimal, fromUnits, toSignedUnits, toUnits } from "./exact.ts";
import {
  DEFAULT_THRESHOLDS,
  type SpendingLimits,
  type SpendingLimitsInput,
  type SpendingLimitsView,
} from "./spending-limits.types.ts";

/**
 * How long a process trusts what it read about an organization's limits and block: one second, as for rate
 * limits. A PUT made through this process applies at once; through another, within the second.
 */
const CACHE_TTL_MS = 1000;
const CACHE_MAX_ORGS = 10_000;

/** The figures `checkSpending` judges, from the credit ledger after a debit. */
export type SpendingSnapshot = {
  /** Start of the organization's current credit period (the ledger's: monthly, anchored on the subscription). */
  periodStart: Date;
  /** Credits used this period, exact decimal string. */
  periodUsage: string;
  /** The period's plan allocation; null (custom) or "0": none. */
  allocation: string | null;
  /** The balance now, exact decimal string (negative in overdraft); null: not judged (no credits_low). */
  balance: string | null;
};

export type SpendingCheck = {
  /** The alerts this call recorded (each fires once per org, type and period, across processes). */
  fired: AlertType[];
  blocked: boolean;
};

function view(orgId: string, limits: SpendingLimits | undefined): SpendingLimitsView {
  if (limits === undefined) {
    return {
      orgId,
      configured: false,
      unit: "credits",
      softLimit: null,
      hardLimit: null,
      thresholds: [...DEFAULT_THRESHOLDS],
      hardLimitAction: "block",
      updatedAt: null,
      updatedBy: null,
    };
  }
  return { ...limits, configured: true };
}

function auditView(v: SpendingLimitsView): Record<string, JsonValue> {
  return {
    unit: v.unit,
    soft_limit: v.softLimit,
    hard_limit: v.hardLimit,
    thresholds: v.thresholds,
    hard_limit_action: v.hardLimitAction,
  };
}

/** The limits evaluation applies: credits only (currency limits cannot be stored, see `set`). */
function creditLimits(limits: SpendingLimits | undefined): CreditLimits {
  if (limits === undefined || limits.unit !== "credits") {
    return { softLimit: null, hardLimit: null, thresholds: DEFAULT_THRESHOLDS, hardLimitAction: "block" };
  }
  return limits;
}

export function spendingLimitReached(orgId: string): AppError {
  return new AppError(
    "spending_limit_reached",
    `Organization '${orgId}' has reached its hard spending limit for this billing period`,
  );
}

export function createSpendingLimitsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "spendingLimits" | "alerts">;
  subscriptions: Pick<SubscriptionsService, "current">;
  alerts: Pick<AlertsService, "fire">;
  clock: Clock;
}) {
  const { clock } = deps;
  const limitsCache = new Map<string, { limits: SpendingLimits | undefined; expiresAt: number }>();
  const blockedCache = new Map<string, { blocked: boolean; expiresAt: number }>();
  /** The latest period usage this process saw per organization (from checkSpending). */
  const observed = new Map<string, { periodStart: number; used: bigint }>();
  /** Alerts this process knows fired, so repeated checks skip the insert: `org:period:type`. */
  const firedHere = new Set<string>();

  function bounded<V>(map: Map<string, V>): Map<string, V> {
    if (map.size >= CACHE_MAX_ORGS) {
      map.clear();
    }
    return map;
  }

  async function cachedLimits(orgId: string): Promise<SpendingLimits | undefined> {
    const now = clock.now().getTime();
    const hit = limitsCache.get(orgId);
    if (hit !== undefined && hit.expiresAt > now) {
      return hit.limits;
    }
    const limits = await deps.stores.spendingLimits.find(orgId);
    bounded(limitsCache).set(orgId, { limits, expiresAt: now + CACHE_TTL_MS });
    return limits;
  }

  function forget(orgId: string): void {
    limitsCache.delete(orgId);
    blockedCache.delete(orgId);
  }

  function validate(input: SpendingLimitsInput): void {
    if (
      input.softLimit !== null &&
      input.hardLimit !== null &&
      toUnits(input.softLimit) > toUnits(input.hardLimit)
    ) {
      throw new AppError("validation_failed", "soft_limit: must not be above hard_limit", {
        errors: [{ path: "soft_limit", message: "must not be above hard_limit" }],
      });
    }
    if (input.unit === "currency") {
      throw new AppError(
        "spending_unit_unsupported",
        "Spending limits in currency need a price per credit, and the catalog sets none; set them in credits",
      );
    }
  }

  /** Usage this process knows of for the period: its own observation and the recorded hard_limit alert. */
  async function knownUsage(orgId: string, periodStart: Date): Promise<bigint> {
    const seen = observed.get(orgId);
    let used = seen !== undefined && seen.periodStart === periodStart.getTime() ? seen.used : 0n;
    const alert = await deps.stores.alerts.find(orgId, "hard_limit", periodStart);
    const recorded = alert?.details.used;
    if (typeof recorded === "string") {
      const units = toSignedUnits(recorded);
      used = units > used ? units : used;
    }
    return used;
  }

  /**
   * Whether the organization's hard limit blocks billable work now (`hard_limit_action: block` and this
   * period's usage at or above it). Cheap: answered from a one-second in-process cache; a miss reads the
   * limits, the current period and the period's `hard_limit` alert (which records the usage it fired at,
   * so every process sees a block within a second of any process recording it).
   */
  async function isBlocked(orgId: string): Promise<boolean> {
    const now = clock.now().getTime();
    const hit = blockedCache.get(orgId);
    if (hit !== undefined && hit.expiresAt > now) {
      return hit.blocked;
    }
    const limits = creditLimits(await cachedLimits(orgId));
    let blocked = false;
    if (limits.hardLimitAction === "block" && limits.hardLimit !== null) {
      const { subscription } = await deps.subscriptions.current(orgId);
      const used = await knownUsage(orgId, creditPeriodOf(subscription, clock.now()).start);
      blocked = spendingBlocked(limits, fromUnits(used));
    }
    bounded(blockedCache).set(orgId, { blocked, expiresAt: now + CACHE_TTL_MS });
    return blocked;
  }

  return {
    /** The organization's limits, or the defaults with `configured: false`. */
    async get(orgId: string): Promise<SpendingLimitsView> {
      await loadOrg(deps.stores, orgId);
      return view(orgId, await deps.stores.spendingLimits.find(orgId));
    },

    /** Replace the limits (PUT), audited as `organization.spending_limits_updated` in the same transaction. */
    async set(ctx: RequestContext, orgId: string, input: SpendingLimitsInput): Promise<SpendingLimitsView> {
      const normalized: SpendingLimitsInput = {
        ...input,
        softLimit: input.softLimit === null ? null : canonicalDecimal(input.softLimit),
        hardLimit: input.hardLimit === null ? null : canonicalDecimal(input.hardLimit),
      };
      const result = await deps.db.transaction(async (stores) => {
        await loadOrg(stores, orgId, true);
        validate(normalized);
        const before = view(orgId, await stores.spendingLimits.find(orgId));
        const limits: SpendingLimits = {
          orgId,
          ...normalized,
          updatedAt: clock.now(),
          updatedBy: ctx.principal.id,
        };
        await stores.spendingLimits.upsert(limits);
        const after = view(orgId, limits);
        const changes = diffViews(before.configured ? auditView(before) : undefined, auditView(after));
        if (Object.keys(changes).length > 0) {
          await stores.audit.insert(
            auditEvent(
              ctx,
              {
                orgId,
                action: "organization.spending_limits_updated",
                targetType: "organization",
                targetId: orgId,
                changes,
              },
              clock,
            ),
          );
        }
        return after;
      });
      forget(orgId);
      return result;
    },

    /**
     * Judge the period's figures against the limits and fire every alert that is due (usage_<n>,
     * soft_limit, hard_limit, credits_low), each at most once per organization, type and period. Call it
     * after ledger debits. Answers what this call fired and whether the hard limit now blocks.
     */
    async checkSpending(orgId: string, snapshot: SpendingSnapshot): Promise<SpendingCheck> {
      const limits = creditLimits(await cachedLimits(orgId));
      const evaluation = evaluateSpending({
        periodUsage: snapshot.periodUsage,
        allocation: snapshot.allocation,
        balance: snapshot.balance,
        limits,
      });
      const period = snapshot.periodStart.getTime();
      const usedUnits = toSignedUnits(snapshot.periodUsage);
      const seen = observed.get(orgId);
      if (seen === undefined || seen.periodStart !== period || usedUnits > seen.used) {
        bounded(observed).set(orgId, { periodStart: period, used: usedUnits });
      }
      const fired: AlertType[] = [];
      for (const due of evaluation.due) {
        const key = `${orgId}:${period}:${due.type}`;
        if (firedHere.has(key)) {
          continue;
        }
        const alert = await deps.alerts.fire(orgId, due.type, snapshot.periodStart, due.details);
        if (firedHere.size >= CACHE_MAX_ORGS * 4) {
          firedHere.clear();
        }
        firedHere.add(key);
        if (alert !== undefined) {
          fired.push(due.type);
        }
      }
      bounded(blockedCache).set(orgId, {
        blocked: evaluation.blocked,
        expiresAt: clock.now().getTime() + CACHE_TTL_MS,
      });
      return { fired, blocked: evaluation.blocked };
    },

    isBlocked,

    /** For billable routes: 402 `spending_limit_reached` when `isBlocked`. */
    async assertNotBlocked(orgId: string): Promise<void> {
      if (await isBlocked(orgId)) {
        throw spendingLimitReached(orgId);
      }
    },

    /** Drop what this process cached about `orgId` (it changed in another process). */
    forgetOrg: forget,
  };
}

export type SpendingLimitsService = ReturnType<typeof createSpendingLimitsService>;
