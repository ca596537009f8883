import { and, asc, desc, eq, inArray, isNull, lt } from "drizzle-orm";
import type { AlertsStore } from "../domain/alerts/alerts.store.ts";
import { type Alert, isAlertType } from "../domain/alerts/alerts.types.ts";
import type { Executor } from "./db.ts";
import { alerts } from "./schema/alerts.ts";
import { memberships } from "./schema/memberships.ts";
import { organizations } from "./schema/organizations.ts";
import { users } from "./schema/users.ts";

type Row = typeof alerts.$inferSelect;

function toAlert(row: Row): Alert {
  if (!isAlertType(row.type)) {
    throw new Error(`alert ${row.id} has an unknown type '${row.type}'`);
  }
  return { ...row, type: row.type };
}

export function createAlertsStore(db: Executor): AlertsStore {
  return {
    async insertIfAbsent(alert) {
      const [row] = await db
        .insert(alerts)
        .values(alert)
        .onConflictDoNothing({ target: [alerts.orgId, alerts.type, alerts.periodStart] })
        .returning();
      return row === undefined ? undefined : toAlert(row);
    },

    async findForUpdate(id) {
      const [row] = await db.select().from(alerts).where(eq(alerts.id, id)).for("update");
      return row === undefined ? undefined : toAlert(row);
    },

    async find(orgId, type, periodStart) {
      const [row] = await db
        .select()
        .from(alerts)
        .where(and(eq(alerts.orgId, orgId), eq(alerts.type, type), eq(alerts.periodStart, periodStart)));
      return row === undefined ? undefined : toAlert(row);
    },

    async markSent(id, at) {
      await db.update(alerts).set({ sentAt: at }).where(eq(alerts.id, id));
    },

    async listForPeriod(orgId, periodStart) {
      const rows = await db
        .select()
        .from(alerts)
        .where(and(eq(alerts.orgId, orgId), eq(alerts.periodStart, periodStart)))
        .orderBy(asc(alerts.id));
      return rows.map(toAlert);
    },

    async list(query) {
      const conditions = [eq(alerts.orgId, query.orgId)];
      if (query.after !== undefined) {
        conditions.push(lt(alerts.id, query.after));
      }
      const rows = await db
        .select()
        .from(alerts)
        .where(and(...conditions))
        .orderBy(desc(alerts.id))
        .limit(query.limit + 1);
      return rows.map(toAlert);
    },

    async listUndelivered(before, limit) {
      const rows = await db
        .select({ id: alerts.id })
        .from(alerts)
        .where(and(isNull(alerts.sentAt), lt(alerts.createdAt, before)))
        .orderBy(asc(alerts.createdAt))
        .limit(limit);
      return rows.map((r) => r.id);
    },

    async recipients(orgId) {
      const [org] = await db
        .select({
          name: organizations.name,
          displayName: organizations.displayName,
          billingEmail: organizations.billingEmail,
        })
        .from(organizations)
        .where(eq(organizations.id, orgId));
      if (org === undefined) {
        return undefined;
      }
      const members = await db
        .select({ email: users.email })
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(memberships.orgId, orgId), inArray(memberships.role, ["owner", "billing"])))
        .orderBy(asc(users.id));
      return {
        orgName: org.name,
        orgDisplayName: org.displayName,
        billingEmail: org.billingEmail,
        memberEmails: members.flatMap((m) => (m.email === null ? [] : [m.email])),
      };
    },
  };
}
