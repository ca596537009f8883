import { index, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import type { Scope } from "../../domain/auth/principal.ts";
import type { KeyEnvironment } from "../../lib/api-key-format.ts";
import { organizations } from "./organizations.ts";

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    name: text("name").notNull(),
    environment: text("environment").$type<KeyEnvironment>().notNull(),
    keyPrefix: text("key_prefix").notNull(),
    lastFour: text("last_four").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    scopes: text("scopes").array().$type<Scope[]>().notNull(),
    createdBy: text("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (t) => [index("api_keys_org_id_id_idx").on(t.orgId, t.id)],
);
