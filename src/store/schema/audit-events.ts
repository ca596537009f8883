import { index, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import type { ActorType, AuditChanges } from "../../domain/audit/audit.types.ts";

export const auditEvents = pgTable(
  "audit_events",
  {
    id: text("id").primaryKey(),
    // No foreign key: the trail must outlive anything it describes.
    orgId: text("org_id").notNull(),
    actorType: text("actor_type").$type<ActorType>().notNull(),
    actorId: text("actor_id"),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id").notNull(),
    changes: jsonb("changes").$type<AuditChanges>().notNull(),
    ip: text("ip"),
    userAgent: text("user_agent"),
    requestId: text("request_id"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [index("audit_events_org_id_id_idx").on(t.orgId, t.id.desc())],
);
