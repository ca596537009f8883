import { and, asc, desc, eq, getTableColumns, isNull, lt } from "drizzle-orm";
import type { ApiKeysStore, OperatorKeysStore } from "../domain/api-keys/api-keys.store.ts";
import type { Executor } from "./db.ts";
import { apiKeys } from "./schema/api-keys.ts";
import { operatorKeys } from "./schema/operator-keys.ts";
import { organizations } from "./schema/organizations.ts";

export function createApiKeysStore(db: Executor): ApiKeysStore {
  return {
    async insert(key) {
      await db.insert(apiKeys).values(key);
    },

    async findByHash(keyHash) {
      const [row] = await db
        .select({ ...getTableColumns(apiKeys), orgStatus: organizations.status })
        .from(apiKeys)
        .innerJoin(organizations, eq(organizations.id, apiKeys.orgId))
        .where(eq(apiKeys.keyHash, keyHash));
      return row;
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
