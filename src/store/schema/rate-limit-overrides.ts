import { integer, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import { organizations } from "./organizations.ts";

/**
 * Requests-per-minute overrides of an organization's plan limits. `scope_id` is the organization's own id
 * (an org-wide override) or one of its projects' ids (a project override): one table, one read per org.
 */
export const rateLimitOverrides = pgTable(
  "rate_limit_overrides",
  {
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    scopeId: text("scope_id").notNull(),
    category: text("category").notNull(),
    requestsPerMinute: integer("requests_per_minute").notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.scopeId, t.category] })],
);
