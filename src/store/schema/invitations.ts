import { sql } from "drizzle-orm";
import { index, integer, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { Role } from "../../domain/auth/principal.ts";
import type { InvitationStatus } from "../../domain/invitations/invitations.types.ts";
import { organizations } from "./organizations.ts";

export const invitations = pgTable(
  "invitations",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id")
      .notNull()
      .references(() => organizations.id),
    email: text("email").notNull(),
    role: text("role").$type<Role>().notNull(),
    projectIds: text("project_ids").array(),
    /** SHA-256 of the single-use token; the token itself is only ever in the email. */
    tokenHash: text("token_hash").notNull().unique(),
    status: text("status").$type<InvitationStatus>().notNull(),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    invitedBy: text("invited_by"),
    acceptedBy: text("accepted_by"),
    acceptedAt: timestamp("accepted_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    sendCount: integer("send_count").notNull(),
    lastSentAt: timestamp("last_sent_at", { withTimezone: true }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
  },
  (t) => [
    // One pending invitation per address per organization.
    uniqueIndex("invitations_pending_email_key")
      .on(t.orgId, sql`lower(${t.email})`)
      .where(sql`${t.status} = 'pending'`),
    index("invitations_org_id_id_idx").on(t.orgId, t.id),
  ],
);
