import { index, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";
import type { Role } from "../../domain/auth/principal.ts";
import { organizations } from "./organizations.ts";
import { users } from "./users.ts";

export const memberships = pgTable(
  "memberships",
  {
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    userId: text("user_id")
      .notNull()
      .references(() => users.id),
    role: text("role").$type<Role>().notNull(),
    /** null: every project; otherwise the projects this member may see. */
    projectIds: text("project_ids").array(),
    invitedBy: text("invited_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.orgId, t.userId] }), index("memberships_user_id_idx").on(t.userId)],
);
