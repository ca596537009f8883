import { fromUnits, normalizeDecimal, toUnits } from "../../lib/decimal.ts";
import type { JsonObject } from "../../lib/json.ts";
import type { AlertType } from "../alerts/alerts.types.ts";
import { usageAlertType } from "../alerts/alerts.types.ts";
import { percentOf } from "./exact.ts";
import type { HardLimitAction } from "./spending-limits.types.ts";

/** The limits that take part in an evaluation, in credits. */
export type CreditLimits = {
  softLimit: string | null;
  hardLimit: string | null;
  thresholds: readonly number[];
  hardLimitAction: HardLimitAction;
};

export type SpendingInput = {
  /** Credits used this period, exact decimal string. */
  periodUsage: string;
  /** The plan's allocation for this period; null (custom) or "0": none. */
  allocation: string | null;
  /** The balance now (may be negative in overdraft); null: unknown, credits_low is not judged. */
  balance: string | null;
  limits: CreditLimits;
};

/** What `usage_<n>` percentages are of. */
export type UsageBase = { kind: "allocation" | "hard_limit" | "soft_limit"; amount: string };

export type DueAlert = { type: AlertType; details: JsonObject };

export type SpendingEvaluation = {
  /** Every alert whose condition holds now (firing is deduplicated per period by the alerts table). */
  due: DueAlert[];
  /** The hard limit is reached and its action is `block`. */
  blocked: boolean;
  base: UsageBase | null;
};

/** Below this share of the period's allocation, the balance is low (credits_low). */
const CREDITS_LOW_PERCENT = 10n;

function positive(value: string | null): value is string {
  return value !== null && toUnits(value) > 0n;
}

/** Usage never counts below zero (a period of reversals only). */
function usedUnits(periodUsage: string): bigint {
  const units = toUnits(periodUsage);
  return units > 0n ? units : 0n;
}

/**
 * The base of usage percentages: the period's allocation (what the plan grants); an organization whose plan
 * grants nothing (custom or zero) gets them against its hard limit, else its soft limit; none of the three:
 * no usage_<n> alert.
 */
export function usageBase(allocation: string | null, limits: CreditLimits): UsageBase | null {
  if (positive(allocation)) {
    return { kind: "allocation", amount: normalizeDecimal(allocation) };
  }
  if (positive(limits.hardLimit)) {
    return { kind: "hard_limit", amount: normalizeDecimal(limits.hardLimit) };
  }
  if (positive(limits.softLimit)) {
    return { kind: "soft_limit", amount: normalizeDecimal(limits.softLimit) };
  }
  return null;
}

/** True when `periodUsage` has reached a hard limit whose action is `block`. */
export function spendingBlocked(
  limits: Pick<CreditLimits, "hardLimit" | "hardLimitAction">,
  periodUsage: string,
): boolean {
  return (
    limits.hardLimitAction === "block" &&
    limits.hardLimit !== null &&
    usedUnits(periodUsage) >= toUnits(limits.hardLimit)
  );
}

/**
 * Which alerts are due for this period's usage, and whether the hard limit blocks. Pure: the same input
 * always gives the same answer; the caller fires what is due (each type once per period).
 *
 * - `usage_<n>` for every configured threshold n with used ≥ n% of the base (see `usageBase`);
 * - `soft_limit` / `hard_limit` once used ≥ that limit (the hard one whatever its action);
 * - `credits_low` once the balance is below 10% of a positive allocation.
 */
export function evaluateSpending(input: SpendingInput): SpendingEvaluation {
  const used = usedUnits(input.periodUsage);
  const { limits } = input;
  const due: DueAlert[] = [];
  const base = usageBase(input.allocation, limits);
  if (base !== null) {
    const baseUnits = toUnits(base.amount);
    for (const threshold of limits.thresholds) {
      // used / base ≥ threshold / 100, without division.
      if (used * 100n >= BigInt(threshold) * baseUnits) {
        due.push({
          type: usageAlertType(threshold),
          details: {
            threshold,
            used: fromUnits(used),
            base: base.amount,
            base_kind: base.kind,
            percent: Number(percentOf(used, baseUnits)),
          },
        });
      }
    }
  }
  if (limits.softLimit !== null && used >= toUnits(limits.softLimit)) {
    due.push({
      type: "soft_limit",
      details: { used: fromUnits(used), limit: normalizeDecimal(limits.softLimit) },
    });
  }
  if (limits.hardLimit !== null && used >= toUnits(limits.hardLimit)) {
    due.push({
      type: "hard_limit",
      details: {
        used: fromUnits(used),
        limit: normalizeDecimal(limits.hardLimit),
        action: limits.hardLimitAction,
      },
    });
  }
  if (input.balance !== null && positive(input.allocation)) {
    const balance = toUnits(input.balance);
    if (balance * 100n < CREDITS_LOW_PERCENT * toUnits(input.allocation)) {
      due.push({
        type: "credits_low",
        details: {
          balance: fromUnits(balance),
          allocation: normalizeDecimal(input.allocation),
          percent: Number(CREDITS_LOW_PERCENT),
        },
      });
    }
  }
  return { due, blocked: spendingBlocked(limits, input.periodUsage), base };
}
