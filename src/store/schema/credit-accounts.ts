import { sql } from "drizzle-orm";
import { check, numeric, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { organizations } from "./organizations.ts";

/**
 * One row per organization: the running balance (always the sum of its ledger entries), the configured
 * overdraft, the part of the balance below zero not covered by any grant, and the current credit period.
 * Debits take this row's lock through one conditional UPDATE, so concurrent debits never pass -overdraft.
 */
export const creditAccounts = pgTable(
  "credit_accounts",
  {
    orgId: text("org_id")
      .primaryKey()
      .references(() => organizations.id),
    balance: numeric("balance", { precision: 36, scale: 18 }).notNull().default("0"),
    overdraft: numeric("overdraft", { precision: 36, scale: 18 }).notNull().default("0"),
    overdrawn: numeric("overdrawn", { precision: 36, scale: 18 }).notNull().default("0"),
    periodStart: timestamp("period_start", { withTimezone: true }).notNull(),
    periodEnd: timestamp("period_end", { withTimezone: true }).notNull(),
    /**
     * Credits used in the current period (debits and negative adjustments, less their reversals): what
     * spending limits judge. Kept here, updated in each debit's own UPDATE, so a hard limit holds exactly.
     */
    periodUsed: numeric("period_used", { precision: 36, scale: 18 }).notNull().default("0"),
    /** The current period's plan allocation (null: none, custom). */
    periodAllocation: numeric("period_allocation", { precision: 36, scale: 18 }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    check("credit_accounts_overdraft_check", sql`${t.overdraft} >= 0`),
    check("credit_accounts_overdrawn_check", sql`${t.overdrawn} >= 0`),
    check("credit_accounts_balance_check", sql`${t.balance} >= -${t.overdraft}`),
  ],
);
