import { sql } from "drizzle-orm";
import { check, index, jsonb, numeric, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { ActorType } from "../../domain/audit/audit.types.ts";
import type { EntryAllocation, EntryType } from "../../domain/credits/credits.types.ts";
import { organizations } from "./organizations.ts";

/** The append-only credit ledger: an organization's balance is the sum of its entries' `amount`. */
export const creditEntries = pgTable(
  "credit_entries",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    type: text("type").$type<EntryType>().notNull(),
    /** Signed: grants and credits positive, debits and expiries negative. */
    amount: numeric("amount", { precision: 36, scale: 18 }).notNull(),
    balanceAfter: numeric("balance_after", { precision: 36, scale: 18 }).notNull(),
    /** Change of the account's overdrawn part: + when a debit went past every grant, - when repaid. */
    overdrawn: numeric("overdrawn", { precision: 36, scale: 18 }).notNull().default("0"),
    /** The grant a grant or expiry entry is about. */
    grantId: text("grant_id"),
    /** How much of each grant the entry took (negative) or gave back (positive). */
    allocations: jsonb("allocations").$type<EntryAllocation[]>().notNull().default([]),
    /** authorize | usage for debits; the grant source for grants. */
    source: text("source"),
    reference: text("reference"),
    reason: text("reason"),
    /** The entry this one reverses: unique, so an entry is reversed at most once. */
    reversesId: text("reverses_id"),
    actorType: text("actor_type").$type<ActorType>().notNull(),
    actorId: text("actor_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    check(
      "credit_entries_type_check",
      sql`${t.type} in ('grant', 'debit', 'adjustment', 'reversal', 'expiry')`,
    ),
    uniqueIndex("credit_entries_reverses_id_key").on(t.reversesId).where(sql`${t.reversesId} is not null`),
    index("credit_entries_org_id_id_idx").on(t.orgId, t.id.desc()),
    index("credit_entries_org_id_created_at_idx").on(t.orgId, t.createdAt),
  ],
);
