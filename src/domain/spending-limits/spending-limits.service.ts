import type { Clock } from "../../lib/clock.ts";
import { divideDecimal, normalizeDecimal, toUnits } from "../../lib/decimal.ts";
import { AppError } from "../../lib/errors.ts";
import type { JsonValue } from "../../lib/json.ts";
import { freshOrRefreshing, singleFlight } from "../../lib/single-flight.ts";
import type { AlertsService } from "../alerts/alerts.service.ts";
import type { AlertType } from "../alerts/alerts.types.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { RequestContext } from "../auth/principal.ts";
import type { CreditPrice } from "../catalog/catalog.types.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { type CreditLimits, evaluateSpending, spendingBlocked } from "./evaluate.ts";
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

/**
 * The limits evaluation applies, in credits. Limits in currency are divided by the catalog's credit price,
 * truncated, so they bind at or a hair before the amount set (never after). Without a credit price (it
 * was removed from the catalog after the limits were set) currency limits cannot be judged: none apply.
 */
function creditLimits(limits: SpendingLimits | undefined, price: CreditPrice | undefined): CreditLimits {
  if (limits === undefined) {
    return { softLimit: null, hardLimit: null, thresholds: DEFAULT_THRESHOLDS, hardLimitAction: "block" };
  }
  if (limits.unit === "credits") {
    return limits;
  }
  if (price === undefined) {
    return { ...limits, softLimit: null, hardLimit: null };
  }
  const inCredits = (amount: string | null) => (amount === null ? null : divideDecimal(amount, price.amount));
  return { ...limits, softLimit: inCredits(limits.softLimit), hardLimit: inCredits(limits.hardLimit) };
}

export function spendingLimitReached(orgId: string): AppError {
  return new AppError(
    "spending_limit_reached",
    `Organization '${orgId}' has reached its hard spending limit for this billing period`,
  );
}

export function createSpendingLimitsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "spendingLimits" | "alerts" | "credits">;
  alerts: Pick<AlertsService, "fire">;
  clock: Clock;
  /** The catalog's price of a credit; without it limits can only be set in credits. */
  creditPrice: CreditPrice | undefined;
}) {
  const { clock } = deps;
  const limitsCache = new Map<string, { limits: SpendingLimits | undefined; expiresAt: number }>();
  const blockedCache = new Map<string, { blocked: boolean; expiresAt: number }>();
  /** The latest period usage this process saw per organization (from checkSpending). */
  /** Alerts this process knows fired, so repeated checks skip the insert: `org:period:type`. */
  const firedHere = new Set<string>();

  function bounded<V>(map: Map<string, V>): Map<string, V> {
    if (map.size >= CACHE_MAX_ORGS) {
      map.clear();
    }
    return map;
  }

  /** Bumped by every `forget`: a read that began before one answers, but is not kept. */
  let generation = 0;

  const readLimits = singleFlight(async (orgId) => {
    const started = generation;
    const now = clock.now().getTime();
    const limits = await deps.stores.spendingLimits.find(orgId);
    if (started === generation) {
      bounded(limitsCache).set(orgId, { limits, expiresAt: now + CACHE_TTL_MS });
    }
    return limits;
  });

  async function cachedLimits(orgId: string): Promise<SpendingLimits | undefined> {
    const hit = limitsCache.get(orgId);
    if (hit !== undefined && hit.expiresAt > clock.now().getTime()) {
      return hit.limits;
    }
    return readLimits(orgId);
  }

  function forget(orgId: string): void {
    generation += 1;
    limitsCache.delete(orgId);
    blockedCache.delete(orgId);
  }

  function validate(input: SpendingLimitsInput, orgCurrency: string): void {
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
      const price = deps.creditPrice;
      if (price === undefined) {
        throw new AppError(
          "spending_unit_unsupported",
          "Spending limits in currency need the catalog's credit_price, and it sets none; set them in credits",
        );
      }
      if (orgCurrency.toLowerCase() !== price.currency) {
        throw new AppError(
          "spending_unit_unsupported",
          `Credits are priced in ${price.currency.toUpperCase()} and the organization's currency is ` +
            `${orgCurrency.toUpperCase()}; set the limits in credits`,
        );
      }
    }
  }

  /**
   * Whether the organization's hard limit blocks billable work now (`hard_limit_action: block` and this
   * period's use at or above it). Cheap: answered from a one-second in-process cache; a miss reads the
   * limits and the credit account, whose `period_used` every debit moves in its own UPDATE — so every
   * process sees a block within a second of the debit that reached it. (The debit itself is refused at
   * the limit exactly, in the same UPDATE: see the credits store's tryDebit.)
   */
  // The requests that find the answer stale wait for one judgement between them, not one each.
  const judgeBlocked = singleFlight(async (orgId) => {
    const started = generation;
    const now = clock.now().getTime();
    const limits = creditLimits(await cachedLimits(orgId), deps.creditPrice);
    let blocked = false;
    if (limits.hardLimitAction === "block" && limits.hardLimit !== null) {
      // The ledger keeps the period's use on the account row; a period that has ended is not used yet.
      const account = await deps.stores.credits.findAccount(orgId);
      const used = account !== undefined && account.periodEnd.getTime() > now ? account.periodUsed : "0";
      blocked = spendingBlocked(limits, used);
    }
    if (started === generation) {
      bounded(blockedCache).set(orgId, { blocked, expiresAt: now + CACHE_TTL_MS });
    }
    return blocked;
  });

  async function isBlocked(orgId: string): Promise<boolean> {
    const hit = blockedCache.get(orgId);
    return freshOrRefreshing(
      hit === undefined ? undefined : { value: hit.blocked, expiresAt: hit.expiresAt },
      clock.now().getTime(),
      () => judgeBlocked(orgId),
    );
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
        softLimit: input.softLimit === null ? null : normalizeDecimal(input.softLimit),
        hardLimit: input.hardLimit === null ? null : normalizeDecimal(input.hardLimit),
      };
      const result = await deps.db.transaction(async (stores) => {
        const org = await loadOrg(stores, orgId, true);
        validate(normalized, org.currency);
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
      const limits = creditLimits(await cachedLimits(orgId), deps.creditPrice);
      const evaluation = evaluateSpending({
        periodUsage: snapshot.periodUsage,
        allocation: snapshot.allocation,
        balance: snapshot.balance,
        limits,
      });
      const period = snapshot.periodStart.getTime();
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
