import { sql } from "drizzle-orm";
import { check, index, integer, numeric, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { GrantSource } from "../../domain/credits/credits.types.ts";
import { organizations } from "./organizations.ts";

/** Grants of credits; `remaining` falls as debits consume them in order and reaches 0 at expiry. */
export const creditGrants = pgTable(
  "credit_grants",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    source: text("source").$type<GrantSource>().notNull(),
    amount: numeric("amount", { precision: 36, scale: 18 }).notNull(),
    remaining: numeric("remaining", { precision: 36, scale: 18 }).notNull(),
    priority: integer("priority").notNull().default(0),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    /** Set once the grant no longer counts: expired (an expiry entry) or reversed. */
    closedAt: timestamp("closed_at", { withTimezone: true }),
    /** The credit period a plan allocation belongs to. */
    periodStart: timestamp("period_start", { withTimezone: true }),
    /** A payment id or similar: unique per organization. */
    reference: text("reference"),
    reason: text("reason"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    check(
      "credit_grants_source_check",
      sql`${t.source} in ('plan_allocation', 'purchase', 'promotional', 'adjustment')`,
    ),
    check("credit_grants_remaining_check", sql`${t.remaining} >= 0 and ${t.remaining} <= ${t.amount}`),
    uniqueIndex("credit_grants_org_id_reference_key")
      .on(t.orgId, t.reference)
      .where(sql`${t.reference} is not null`),
    uniqueIndex("credit_grants_org_id_period_start_key")
      .on(t.orgId, t.periodStart)
      .where(sql`${t.source} = 'plan_allocation'`),
    index("credit_grants_live_idx").on(t.orgId).where(sql`${t.closedAt} is null`),
    index("credit_grants_expires_at_idx").on(t.expiresAt).where(sql`${t.closedAt} is null`),
  ],
);
