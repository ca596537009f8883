import { sql } from "drizzle-orm";
import { check, integer, numeric, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import { organizations } from "./organizations.ts";

/** One row per organization that set spending limits (GET/PUT …/spending-limits). */
export const spendingLimits = pgTable(
  "spending_limits",
  {
    orgId: text("org_id")
      .primaryKey()
      .references(() => organizations.id),
    unit: text("unit").$type<"currency" | "credits">().notNull(),
    softLimit: numeric("soft_limit", { precision: 36, scale: 18 }),
    hardLimit: numeric("hard_limit", { precision: 36, scale: 18 }),
    thresholds: integer("thresholds").array().notNull().default(sql`'{50,75,90,100}'`),
    hardLimitAction: text("hard_limit_action").$type<"block" | "alert">().notNull().default("block"),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    updatedBy: text("updated_by"),
  },
  (t) => [
    check("spending_limits_unit_check", sql`${t.unit} in ('currency', 'credits')`),
    check("spending_limits_hard_limit_action_check", sql`${t.hardLimitAction} in ('block', 'alert')`),
  ],
);
