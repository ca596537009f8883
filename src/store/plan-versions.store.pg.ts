import { and, asc, desc, eq } from "drizzle-orm";
import type { PlanVersionsStore } from "../domain/catalog/catalog.store.ts";
import type { PlanVersion } from "../domain/catalog/catalog.types.ts";
import { newId } from "../lib/ids.ts";
import type { Executor } from "./db.ts";
import { planVersions } from "./schema/plan-versions.ts";

type Row = typeof planVersions.$inferSelect;

export function toPlanVersion(row: Row): PlanVersion {
  return {
    id: row.id,
    key: row.key,
    version: row.version,
    definition: row.definition,
    contentHash: row.contentHash,
    isCurrent: row.isCurrent,
    createdAt: row.createdAt,
  };
}

/**
 * `sync` must run inside a transaction (the caller's), under the migration advisory lock: it reads every
 * version, then demotes before it promotes, so the one-current-version-per-key index holds at every step.
 */
export function createPlanVersionsStore(db: Executor): PlanVersionsStore {
  async function listCurrent(): Promise<PlanVersion[]> {
    const rows = await db
      .select()
      .from(planVersions)
      .where(eq(planVersions.isCurrent, true))
      .orderBy(asc(planVersions.key));
    return rows.map(toPlanVersion);
  }

  return {
    async sync(plans, hashes, at) {
      const rows = await db
        .select()
        .from(planVersions)
        .orderBy(asc(planVersions.key), desc(planVersions.version));
      const latest = new Map<string, Row>();
      for (const row of rows) {
        if (!latest.has(row.key)) {
          latest.set(row.key, row);
        }
      }
      const wanted = new Map(plans.map((p) => [p.key, p]));
      // A plan whose newest version has the same content keeps it (made current again if it was removed).
      const keep = new Set<string>();
      for (const plan of plans) {
        const hash = hashes.get(plan.key);
        if (hash === undefined) {
          throw new Error(`no content hash for plan '${plan.key}'`);
        }
        if (latest.get(plan.key)?.contentHash === hash) {
          keep.add(latest.get(plan.key)?.id ?? "");
        }
      }
      for (const row of rows) {
        if (row.isCurrent && !keep.has(row.id)) {
          await db.update(planVersions).set({ isCurrent: false }).where(eq(planVersions.id, row.id));
        }
      }
      for (const [key, plan] of wanted) {
        const newest = latest.get(key);
        if (newest !== undefined && keep.has(newest.id)) {
          if (!newest.isCurrent) {
            await db.update(planVersions).set({ isCurrent: true }).where(eq(planVersions.id, newest.id));
          }
          continue;
        }
        await db.insert(planVersions).values({
          id: newId("pln"),
          key,
          version: (newest?.version ?? 0) + 1,
          definition: plan,
          contentHash: hashes.get(key) ?? "",
          isCurrent: true,
          createdAt: at,
        });
      }
      return listCurrent();
    },

    async findVersion(id) {
      const [row] = await db.select().from(planVersions).where(eq(planVersions.id, id));
      return row === undefined ? undefined : toPlanVersion(row);
    },

    async findCurrentByKey(key) {
      const [row] = await db
        .select()
        .from(planVersions)
        .where(and(eq(planVersions.key, key), eq(planVersions.isCurrent, true)));
      return row === undefined ? undefined : toPlanVersion(row);
    },

    listCurrent,

    async listAllVersions() {
      const rows = await db
        .select()
        .from(planVersions)
        .orderBy(asc(planVersions.key), desc(planVersions.version));
      return rows.map(toPlanVersion);
    },
  };
}
