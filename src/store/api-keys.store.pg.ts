import {
  and,
  asc,
  desc,
  eq,
  getTableColumns,
  gt,
  inArray,
  isNull,
  lt,
  lte,
  ne,
  notExists,
  sql,
} from "drizzle-orm";
import { alias } from "drizzle-orm/pg-core";
import type { ApiKeysStore, OperatorKeysStore } from "../domain/api-keys/api-keys.store.ts";
import type { Executor } from "./db.ts";
import { apiKeys } from "./schema/api-keys.ts";
import { operatorKeys } from "./schema/operator-keys.ts";
import { organizations } from "./schema/organizations.ts";
import { projects } from "./schema/projects.ts";

export function createApiKeysStore(db: Executor): ApiKeysStore {
  return {
    async insert(key) {
      await db.insert(apiKeys).values(key);
    },

    async findByHash(keyHash) {
      const [row] = await db
        .select({
          ...getTableColumns(apiKeys),
          orgStatus: organizations.status,
          // A project key whose project is gone (deleted, or never in this organization) is refused.
          projectDeleted: sql<boolean>`(${apiKeys.projectId} is not null and ${projects.deletedAt} is not null or ${apiKeys.projectId} is not null and ${projects.id} is null)`,
        })
        .from(apiKeys)
        .innerJoin(organizations, eq(organizations.id, apiKeys.orgId))
        .leftJoin(projects, and(eq(projects.id, apiKeys.projectId), eq(projects.orgId, apiKeys.orgId)))
        .where(eq(apiKeys.keyHash, keyHash));
      return row;
    },

    async existingIds(orgId, ids) {
      if (ids.length === 0) {
        return [];
      }
      const rows = await db
        .select({ id: apiKeys.id })
        .from(apiKeys)
        .where(and(eq(apiKeys.orgId, orgId), inArray(apiKeys.id, [...ids])));
      return rows.map((r) => r.id);
    },

    async find(orgId, id) {
      const [row] = await db
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, id)));
      return row;
    },

    async revoke(orgId, id, at) {
      await db
        .update(apiKeys)
        .set({ revokedAt: at })
        .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, id), isNull(apiKeys.revokedAt)));
      const [row] = await db
        .select()
        .from(apiKeys)
        .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, id)));
      return row;
    },

    async list(query) {
      const conditions = [eq(apiKeys.orgId, query.orgId)];
      if (!query.includeRevoked) {
        conditions.push(isNull(apiKeys.revokedAt));
      }
      if (query.after !== undefined) {
        conditions.push(lt(apiKeys.id, query.after));
      }
      return db
        .select()
        .from(apiKeys)
        .where(and(...conditions))
        .orderBy(desc(apiKeys.id))
        .limit(query.limit + 1);
    },

    async update(key) {
      await db
        .update(apiKeys)
        .set({
          name: key.name,
          description: key.description,
          scopes: key.scopes,
          expiresAt: key.expiresAt,
          rateLimitOverrides: key.rateLimitOverrides,
          metadata: key.metadata,
          expiringNotifiedAt: sql`case when ${apiKeys.expiresAt} is distinct from ${key.expiresAt?.toISOString() ?? null}::timestamptz then null else ${apiKeys.expiringNotifiedAt} end`,
        })
        .where(and(eq(apiKeys.orgId, key.orgId), eq(apiKeys.id, key.id)));
    },

    async touchLastUsed(uses) {
      if (uses.length === 0) {
        return;
      }
      // One UPDATE for the whole batch, by globally unique key id (no tenant is named: this is the
      // process's own bookkeeping); greatest() keeps a later time written by another process.
      await db.execute(sql`
        update ${apiKeys} set last_used_at = greatest(${apiKeys.lastUsedAt}, u.at)
        from unnest(
          ${sql.param(uses.map((u) => u.keyId))}::text[],
          ${sql.param(uses.map((u) => u.at.toISOString()))}::timestamptz[]
        ) as u(id, at)
        where ${apiKeys.id} = u.id`);
    },

    async revokeCreatedBy(orgId, creatorId, at) {
      const rows = await db
        .update(apiKeys)
        .set({ revokedAt: at })
        .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.createdBy, creatorId), isNull(apiKeys.revokedAt)))
        .returning({ id: apiKeys.id });
      return rows.map((r) => r.id);
    },

    async lockExpiring(query) {
      const successor = alias(apiKeys, "successor");
      const rows = await db
        .select({ key: getTableColumns(apiKeys) })
        .from(apiKeys)
        .innerJoin(organizations, eq(organizations.id, apiKeys.orgId))
        .where(
          and(
            isNull(apiKeys.revokedAt),
            isNull(apiKeys.expiringNotifiedAt),
            gt(apiKeys.expiresAt, query.after),
            lte(apiKeys.expiresAt, query.until),
            ne(organizations.status, "deleted"),
            notExists(
              db
                .select({ id: successor.id })
                .from(successor)
                .where(and(eq(successor.orgId, apiKeys.orgId), eq(successor.rotatedFrom, apiKeys.id))),
            ),
          ),
        )
        .orderBy(asc(apiKeys.expiresAt))
        .limit(query.limit)
        .for("update", { of: apiKeys, skipLocked: true });
      return rows.map((r) => r.key);
    },

    async markExpiringNotified(orgId, id, at) {
      await db
        .update(apiKeys)
        .set({ expiringNotifiedAt: at })
        .where(and(eq(apiKeys.orgId, orgId), eq(apiKeys.id, id)));
    },
  };
}

export function createOperatorKeysStore(db: Executor): OperatorKeysStore {
  return {
    async insert(key) {
      await db.insert(operatorKeys).values(key);
    },
    async findByHash(keyHash) {
      const [row] = await db.select().from(operatorKeys).where(eq(operatorKeys.keyHash, keyHash));
      return row;
    },
    async countActive() {
      return db.$count(operatorKeys, isNull(operatorKeys.revokedAt));
    },
    async list() {
      return db.select().from(operatorKeys).orderBy(asc(operatorKeys.id));
    },
    async revoke(id, at) {
      await db
        .update(operatorKeys)
        .set({ revokedAt: at })
        .where(and(eq(operatorKeys.id, id), isNull(operatorKeys.revokedAt)));
      const [row] = await db.select().from(operatorKeys).where(eq(operatorKeys.id, id));
      return row;
    },
  };
}
