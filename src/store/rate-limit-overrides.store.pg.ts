import { and, eq } from "drizzle-orm";
import type { RateLimitOverridesStore } from "../domain/rate-limits/rate-limits.store.ts";
import type { Executor } from "./db.ts";
import { rateLimitOverrides } from "./schema/rate-limit-overrides.ts";

export function createRateLimitOverridesStore(db: Executor): RateLimitOverridesStore {
  return {
    async listForOrg(orgId) {
      return db.select().from(rateLimitOverrides).where(eq(rateLimitOverrides.orgId, orgId));
    },

    async upsert(override) {
      await db
        .insert(rateLimitOverrides)
        .values(override)
        .onConflictDoUpdate({
          target: [rateLimitOverrides.orgId, rateLimitOverrides.scopeId, rateLimitOverrides.category],
          set: { requestsPerMinute: override.requestsPerMinute, updatedAt: override.updatedAt },
        });
    },

    async remove(orgId, scopeId, category) {
      await db
        .delete(rateLimitOverrides)
        .where(
          and(
            eq(rateLimitOverrides.orgId, orgId),
            eq(rateLimitOverrides.scopeId, scopeId),
            eq(rateLimitOverrides.category, category),
          ),
        );
    },
  };
}
