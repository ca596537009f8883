import { and, eq, ne, sql } from "drizzle-orm";
import type { BillingSyncStore } from "../domain/billing/billing.types.ts";
import type { Executor } from "./db.ts";
import { toPlanVersion } from "./plan-versions.store.pg.ts";
import { organizations } from "./schema/organizations.ts";
import { planVersions } from "./schema/plan-versions.ts";
import { stripeEvents } from "./schema/stripe-events.ts";
import { subscriptions } from "./schema/subscriptions.ts";

/** The Stripe sync's narrow access to subscriptions, organizations' customer links, plans and processed events. */
export function createBillingSyncStore(db: Executor): BillingSyncStore {
  return {
    async recordEvent(event) {
      const rows = await db
        .insert(stripeEvents)
        .values(event)
        .onConflictDoNothing({ target: stripeEvents.id })
        .returning({ id: stripeEvents.id });
      return rows.length === 1;
    },

    async findOrgIdBySubscription(providerSubscriptionId) {
      const [row] = await db
        .select({ orgId: subscriptions.orgId })
        .from(subscriptions)
        .where(eq(subscriptions.providerSubscriptionId, providerSubscriptionId));
      return row?.orgId;
    },

    async findOrgIdByCustomer(customerId) {
      const [row] = await db
        .select({ id: organizations.id })
        .from(organizations)
        .where(
          and(
            sql`${organizations.externalIds} ->> 'stripe_customer_id' = ${customerId}`,
            ne(organizations.status, "deleted"),
          ),
        )
        .limit(1);
      return row?.id;
    },

    async findSubscriptionForUpdate(orgId) {
      const [row] = await db.select().from(subscriptions).where(eq(subscriptions.orgId, orgId)).for("update");
      return row;
    },

    async insertSubscription(subscription) {
      await db.insert(subscriptions).values(subscription);
    },

    async updateSubscription(subscription) {
      const { id, orgId, createdAt, ...fields } = subscription;
      await db
        .update(subscriptions)
        .set(fields)
        .where(and(eq(subscriptions.orgId, orgId), eq(subscriptions.id, id)));
    },

    async findPlanByStripePrice(priceId) {
      const [row] = await db
        .select()
        .from(planVersions)
        .where(
          and(
            eq(planVersions.isCurrent, true),
            sql`${planVersions.definition} ->> 'stripePriceId' = ${priceId}`,
          ),
        )
        .limit(1);
      return row === undefined ? undefined : toPlanVersion(row);
    },
  };
}
