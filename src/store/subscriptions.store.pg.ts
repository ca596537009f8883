import { and, asc, eq, gt, gte, isNull, lte, ne, notExists, or, sql } from "drizzle-orm";
import type {
  OwnedQuota,
  QuotaUsageStore,
  SubscriptionsStore,
} from "../domain/subscriptions/subscriptions.store.ts";
import type { Executor } from "./db.ts";
import { alerts } from "./schema/alerts.ts";
import { apiKeys } from "./schema/api-keys.ts";
import { invitations } from "./schema/invitations.ts";
import { memberships } from "./schema/memberships.ts";
import { organizations } from "./schema/organizations.ts";
import { projects } from "./schema/projects.ts";
import { subscriptions } from "./schema/subscriptions.ts";

export function createSubscriptionsStore(db: Executor): SubscriptionsStore {
  // Every subscription read (plans, limits, usage, credits) starts here: a named prepared statement.
  let byOrg: ReturnType<typeof prepareFindByOrg> | undefined;
  const prepareFindByOrg = () =>
    db
      .select()
      .from(subscriptions)
      .where(eq(subscriptions.orgId, sql.placeholder("orgId")))
      .prepare("subscriptions_find_by_org");
  return {
    async findByOrg(orgId) {
      byOrg ??= prepareFindByOrg();
      const [row] = await byOrg.execute({ orgId });
      return row;
    },

    async findByOrgForUpdate(orgId) {
      const [row] = await db.select().from(subscriptions).where(eq(subscriptions.orgId, orgId)).for("update");
      return row;
    },

    async insert(subscription) {
      const rows = await db
        .insert(subscriptions)
        .values(subscription)
        .onConflictDoNothing({ target: subscriptions.orgId })
        .returning({ id: subscriptions.id });
      return rows.length === 1;
    },

    async updateLifecycle(s) {
      await db
        .update(subscriptions)
        .set({
          planVersionId: s.planVersionId,
          status: s.status,
          interval: s.interval,
          billingAnchorDay: s.billingAnchorDay,
          currentPeriodStart: s.currentPeriodStart,
          currentPeriodEnd: s.currentPeriodEnd,
          trialEnd: s.trialEnd,
          cancelAt: s.cancelAt,
          cancelAtPeriodEnd: s.cancelAtPeriodEnd,
          canceledAt: s.canceledAt,
          seats: s.seats,
          updatedAt: s.updatedAt,
        })
        .where(and(eq(subscriptions.orgId, s.orgId), eq(subscriptions.id, s.id)));
    },

    async lockDue(now, limit) {
      return db
        .select()
        .from(subscriptions)
        .where(
          or(
            lte(subscriptions.currentPeriodEnd, now),
            lte(subscriptions.cancelAt, now),
            and(eq(subscriptions.status, "trialing"), lte(subscriptions.trialEnd, now)),
          ),
        )
        .orderBy(subscriptions.currentPeriodEnd)
        .limit(limit)
        .for("update", { skipLocked: true });
    },

    async listTrialsEnding({ now, until, alertedSince, limit }) {
      const rows = await db
        .select({ subscription: subscriptions })
        .from(subscriptions)
        .innerJoin(organizations, eq(organizations.id, subscriptions.orgId))
        .where(
          and(
            eq(subscriptions.status, "trialing"),
            gt(subscriptions.trialEnd, now),
            lte(subscriptions.trialEnd, until),
            ne(organizations.status, "deleted"),
            notExists(
              db
                .select({ one: sql`1` })
                .from(alerts)
                .where(
                  and(
                    eq(alerts.orgId, subscriptions.orgId),
                    eq(alerts.type, "trial_ending"),
                    gte(alerts.createdAt, alertedSince),
                  ),
                ),
            ),
          ),
        )
        .orderBy(asc(subscriptions.trialEnd), asc(subscriptions.orgId))
        .limit(limit);
      return rows.map((r) => r.subscription);
    },
  };
}

export function createQuotaUsageStore(db: Executor): QuotaUsageStore {
  const counted = async (query: Promise<{ n: number }[]>) => (await query)[0]?.n ?? 0;
  const n = sql<number>`count(*)::int`;
  return {
    count(orgId, quota: OwnedQuota, now) {
      switch (quota) {
        case "members":
          return counted(db.select({ n }).from(memberships).where(eq(memberships.orgId, orgId)));
        case "projects":
          return counted(
            db
              .select({ n })
              .from(projects)
              .where(and(eq(projects.orgId, orgId), isNull(projects.deletedAt))),
          );
        case "api_keys":
          return counted(
            db
              .select({ n })
              .from(apiKeys)
              .where(
                and(
                  eq(apiKeys.orgId, orgId),
                  isNull(apiKeys.revokedAt),
                  or(isNull(apiKeys.expiresAt), gt(apiKeys.expiresAt, now)),
                ),
              ),
          );
        case "invitations":
          return counted(
            db
              .select({ n })
              .from(invitations)
              .where(
                and(
                  eq(invitations.orgId, orgId),
                  eq(invitations.status, "pending"),
                  gt(invitations.expiresAt, now),
                ),
              ),
          );
      }
    },
  };
}
