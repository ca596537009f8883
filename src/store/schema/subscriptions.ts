import { boolean, index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";
import type { BillingInterval } from "../../domain/catalog/catalog.types.ts";
import type { SubscriptionStatus } from "../../domain/subscriptions/subscriptions.types.ts";
import { organizations } from "./organizations.ts";
import { planVersions } from "./plan-versions.ts";

export const subscriptions = pgTable(
  "subscriptions",
  {
    id: text("id").primaryKey(),
    // One current subscription per organization.
    orgId: text("org_id")
      .notNull()
      .unique()
      .references(() => organizations.id),
    planVersionId: text("plan_version_id")
      .notNull()
      .references(() => planVersions.id),
    status: text("status").$type<SubscriptionStatus>().notNull(),
    interval: text("interval").$type<BillingInterval>().notNull(),
    billingAnchorDay: integer("billing_anchor_day").notNull(),
    currentPeriodStart: timestamp("current_period_start", { withTimezone: true }).notNull(),
    currentPeriodEnd: timestamp("current_period_end", { withTimezone: true }).notNull(),
    trialEnd: timestamp("trial_end", { withTimezone: true }),
    cancelAt: timestamp("cancel_at", { withTimezone: true }),
    cancelAtPeriodEnd: boolean("cancel_at_period_end").notNull(),
    canceledAt: timestamp("canceled_at", { withTimezone: true }),
    pauseReason: text("pause_reason"),
    seats: integer("seats").notNull(),
    provider: text("provider").$type<"stripe">(),
    providerCustomerId: text("provider_customer_id"),
    providerSubscriptionId: text("provider_subscription_id").unique(),
    providerStateAt: timestamp("provider_state_at", { withTimezone: true }),
    lastInvoiceAt: timestamp("last_invoice_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull(),
  },
  // The sweep looks for periods, trials and cancellations that have come due.
  (t) => [index("subscriptions_period_end_idx").on(t.currentPeriodEnd)],
);
