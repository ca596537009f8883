import { index, jsonb, pgTable, text, timestamp, unique } from "drizzle-orm/pg-core";
import type { JsonObject } from "../../lib/json.ts";
import { organizations } from "./organizations.ts";

/** Alerts recorded per organization: each type fires at most once per period (the unique constraint). */
export const alerts = pgTable(
  "alerts",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    type: text("type").notNull(),
    periodStart: timestamp("period_start", { withTimezone: true }).notNull(),
    details: jsonb("details").$type<JsonObject>().notNull().default({}),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
  },
  (t) => [
    unique("alerts_org_id_type_period_start_key").on(t.orgId, t.type, t.periodStart),
    index("alerts_org_id_created_at_idx").on(t.orgId, t.createdAt.desc()),
  ],
);
