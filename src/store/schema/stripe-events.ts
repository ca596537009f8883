import { pgTable, text, timestamp } from "drizzle-orm/pg-core";

/** Stripe webhook events already applied, by Stripe's event id: a replayed delivery has no second effect. */
export const stripeEvents = pgTable("stripe_events", {
  id: text("id").primaryKey(),
  type: text("type").notNull(),
  /** Stripe's `created` of the event. */
  eventCreatedAt: timestamp("event_created_at", { withTimezone: true }).notNull(),
  orgId: text("org_id"),
  processedAt: timestamp("processed_at", { withTimezone: true }).notNull(),
});
