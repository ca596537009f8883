import { sql } from "drizzle-orm";
import { boolean, integer, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { PlanDefinition } from "../../domain/catalog/catalog.types.ts";

/** The catalog's plans, one row per version. Not tenant-owned: every organization shares the catalog. */
export const planVersions = pgTable(
  "plan_versions",
  {
    id: text("id").primaryKey(),
    key: text("key").notNull(),
    version: integer("version").notNull(),
    definition: jsonb("definition").$type<PlanDefinition>().notNull(),
    contentHash: text("content_hash").notNull(),
    isCurrent: boolean("is_current").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    uniqueIndex("plan_versions_key_version_key").on(t.key, t.version),
    uniqueIndex("plan_versions_current_key").on(t.key).where(sql`${t.isCurrent}`),
  ],
);
