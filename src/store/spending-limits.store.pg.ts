import { eq } from "drizzle-orm";
import type { SpendingLimitsStore } from "../domain/spending-limits/spending-limits.store.ts";
import type { SpendingLimits } from "../domain/spending-limits/spending-limits.types.ts";
import { normalizeDecimal } from "../lib/decimal.ts";
import type { Executor } from "./db.ts";
import { spendingLimits } from "./schema/spending-limits.ts";

type Row = typeof spendingLimits.$inferSelect;

function toLimits(row: Row): SpendingLimits {
  return {
    orgId: row.orgId,
    unit: row.unit,
    // numeric(36,18) comes back padded ("100.000000000000000000"): shown as written.
    softLimit: row.softLimit === null ? null : normalizeDecimal(row.softLimit),
    hardLimit: row.hardLimit === null ? null : normalizeDecimal(row.hardLimit),
    thresholds: row.thresholds,
    hardLimitAction: row.hardLimitAction,
    updatedAt: row.updatedAt,
    updatedBy: row.updatedBy,
  };
}

export function createSpendingLimitsStore(db: Executor): SpendingLimitsStore {
  return {
    async find(orgId) {
      const [row] = await db.select().from(spendingLimits).where(eq(spendingLimits.orgId, orgId));
      return row === undefined ? undefined : toLimits(row);
    },

    async upsert(limits) {
      const values = {
        unit: limits.unit,
        softLimit: limits.softLimit,
        hardLimit: limits.hardLimit,
        thresholds: limits.thresholds,
        hardLimitAction: limits.hardLimitAction,
        updatedAt: limits.updatedAt,
        updatedBy: limits.updatedBy,
      };
      await db
        .insert(spendingLimits)
        .values({ orgId: limits.orgId, ...values })
        .onConflictDoUpdate({ target: spendingLimits.orgId, set: values });
    },
  };
}
