import { sql } from "drizzle-orm";
import { index, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { JsonObject } from "../../lib/json.ts";
import { organizations } from "./organizations.ts";

export const projects = pgTable(
  "projects",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    name: text("name").notNull(),
    slug: text("slug").notNull(),
    state: text("state").$type<"active" | "archived">().notNull(),
    metadata: jsonb("metadata").$type<JsonObject>().notNull(),
    createdBy: text("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
  },
  (t) => [
    uniqueIndex("projects_org_slug_live_key").on(t.orgId, t.slug).where(sql`${t.deletedAt} is null`),
    index("projects_org_id_id_idx").on(t.orgId, t.id),
  ],
);
