import { and, desc, eq, gte, lt } from "drizzle-orm";
import type { AuditStore } from "../domain/audit/audit.store.ts";
import type { Executor } from "./db.ts";
import { auditEvents } from "./schema/audit-events.ts";

export function createAuditStore(db: Executor): AuditStore {
  return {
    async insert(event) {
      await db.insert(auditEvents).values(event);
    },
    async list(query) {
      const conditions = [eq(auditEvents.orgId, query.orgId)];
      if (query.after !== undefined) {
        conditions.push(lt(auditEvents.id, query.after));
      }
      if (query.action !== undefined) {
        conditions.push(eq(auditEvents.action, query.action));
      }
      if (query.actorId !== undefined) {
        conditions.push(eq(auditEvents.actorId, query.actorId));
      }
      if (query.since !== undefined) {
        conditions.push(gte(auditEvents.createdAt, query.since));
      }
      if (query.until !== undefined) {
        conditions.push(lt(auditEvents.createdAt, query.until));
      }
      return db
        .select()
        .from(auditEvents)
        .where(and(...conditions))
        .orderBy(desc(auditEvents.id))
        .limit(query.limit + 1);
    },
  };
}
