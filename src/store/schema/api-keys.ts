import { index, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import type { Scope } from "../../domain/auth/principal.ts";
import type { KeyEnvironment } from "../../lib/api-key-format.ts";
import type { JsonObject } from "../../lib/json.ts";
import { organizations } from "./organizations.ts";

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    name: text("name").notNull(),
    description: text("description"),
    /** Set for a project-scoped key. */
    projectId: text("project_id"),
    environment: text("environment").$type<KeyEnvironment>().notNull(),
    keyPrefix: text("key_prefix").notNull(),
    lastFour: text("last_four").notNull(),
    keyHash: text("key_hash").notNull().unique(),
    scopes: text("scopes").array().$type<Scope[]>().notNull(),
    metadata: jsonb("metadata").$type<JsonObject>().notNull().default({}),
    /** Requests per minute by rate-limit category, overriding the plan's (used by the rate limiter). */
    rateLimitOverrides: jsonb("rate_limit_overrides").$type<Record<string, number>>().notNull().default({}),
    createdBy: text("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    /** Kept within a minute, written in batches: never a database write per request. */
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    /** The key this one replaced by rotation. */
    rotatedFrom: text("rotated_from"),
    /** When the `api_key.expiring` webhook event was emitted for this key (once per key). */
    expiringNotifiedAt: timestamp("expiring_notified_at", { withTimezone: true }),
  },
  (t) => [
    index("api_keys_org_id_id_idx").on(t.orgId, t.id),
    index("api_keys_created_by_idx").on(t.createdBy),
  ],
);
