import { pgTable, text, timestamp } from "drizzle-orm/pg-core";

/** Keys of the operator running Orgplane: not tenant-owned, so no org_id. */
export const operatorKeys = pgTable("operator_keys", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  keyPrefix: text("key_prefix").notNull(),
  lastFour: text("last_four").notNull(),
  keyHash: text("key_hash").notNull().unique(),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  revokedAt: timestamp("revoked_at", { withTimezone: true }),
});
