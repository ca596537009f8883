import { sql } from "drizzle-orm";
import { boolean, check, index, jsonb, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import type { OrgStatus } from "../../domain/auth/principal.ts";
import type { BillingAddress, ExternalIds } from "../../domain/orgs/orgs.types.ts";
import type { JsonObject } from "../../lib/json.ts";

export const organizations = pgTable(
  "organizations",
  {
    id: text("id").primaryKey(),
    internalId: text("internal_id").notNull().unique(),
    name: text("name").notNull(),
    displayName: text("display_name"),
    slug: text("slug").notNull(),
    logoUrl: text("logo_url"),
    billingEmail: text("billing_email"),
    billingName: text("billing_name"),
    billingAddress: jsonb("billing_address").$type<BillingAddress>(),
    currency: text("currency").notNull(),
    metadata: jsonb("metadata").$type<JsonObject>().notNull(),
    isPersonal: boolean("is_personal").notNull(),
    registerable: boolean("registerable").notNull(),
    partnerConfiguration: jsonb("partner_configuration").$type<JsonObject>().notNull(),
    externalIds: jsonb("external_ids").$type<ExternalIds>().notNull(),
    status: text("status").$type<OrgStatus>().notNull(),
    suspendedAt: timestamp("suspended_at", { withTimezone: true }),
    suspendedReason: text("suspended_reason"),
    createdBy: text("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
    deletedAt: timestamp("deleted_at", { withTimezone: true }),
  },
  (t) => [
    // A slug names one live organization; a deleted one gives its slug back.
    uniqueIndex("organizations_slug_live_key").on(t.slug).where(sql`${t.status} <> 'deleted'`),
    index("organizations_status_id_idx").on(t.status, t.id),
    check("organizations_status_check", sql`${t.status} in ('active', 'suspended', 'deleted')`),
  ],
);
