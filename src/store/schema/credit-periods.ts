import { numeric, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { organizations } from "./organizations.ts";

/**
 * One row per organization and credit period. Opening a period inserts its row first (ON CONFLICT DO
 * NOTHING): the primary key makes the rollover — expiries, the new allocation — happen exactly once.
 */
export const creditPeriods = pgTable(
  "credit_periods",
  {
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    periodStart: timestamp("period_start", { withTimezone: true }).notNull(),
    periodEnd: timestamp("period_end", { withTimezone: true }).notNull(),
    /** The plan's monthly credits granted for the period; null when the plan's allocation is custom. */
    allocation: numeric("allocation", { precision: 36, scale: 18 }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.periodStart] })],
);
