import { and, desc, eq, exists, lt, ne, sql } from "drizzle-orm";
import type { OrgsStore } from "../domain/orgs/orgs.store.ts";
import type { Organization } from "../domain/orgs/orgs.types.ts";
import type { Executor } from "./db.ts";
import { isUniqueViolation } from "./pg-errors.ts";
import { memberships } from "./schema/memberships.ts";
import { organizations } from "./schema/organizations.ts";

export function createOrgsStore(db: Executor): OrgsStore {
  // Read on nearly every request (each org route checks its organization): a named prepared statement,
  // built once per store and parsed once per connection.
  let byId: ReturnType<typeof prepareFind> | undefined;
  const prepareFind = () =>
    db
      .select()
      .from(organizations)
      .where(eq(organizations.id, sql.placeholder("id")))
      .prepare("orgs_find_by_id");
  return {
    async insert(org) {
      const rows = await db
        .insert(organizations)
        .values(org)
        .onConflictDoNothing({ target: organizations.slug, where: sql`${organizations.status} <> 'deleted'` })
        .returning({ id: organizations.id });
      return rows.length === 1;
    },

    async find(id) {
      byId ??= prepareFind();
      const [row] = await byId.execute({ id });
      return row satisfies Organization | undefined;
    },

    async findForUpdate(id) {
      const [row] = await db.select().from(organizations).where(eq(organizations.id, id)).for("update");
      return row;
    },

    async update(org) {
      const { id, ...fields } = org;
      try {
        await db.update(organizations).set(fields).where(eq(organizations.id, id));
        return true;
      } catch (err) {
        // The caller turns `false` into a 409 and rolls the transaction back.
        if (isUniqueViolation(err, "organizations_slug_live_key")) {
          return false;
        }
        throw err;
      }
    },

    async list(query) {
      const conditions = [
        query.status === undefined
          ? ne(organizations.status, "deleted")
          : eq(organizations.status, query.status),
      ];
      if (query.slug !== undefined) {
        conditions.push(eq(organizations.slug, query.slug));
      }
      if (query.after !== undefined) {
        conditions.push(lt(organizations.id, query.after));
      }
      if (query.memberUserId !== undefined) {
        conditions.push(
          exists(
            db
              .select({ one: sql`1` })
              .from(memberships)
              .where(
                and(eq(memberships.orgId, organizations.id), eq(memberships.userId, query.memberUserId)),
              ),
          ),
        );
      }
      return db
        .select()
        .from(organizations)
        .where(and(...conditions))
        .orderBy(desc(organizations.id))
        .limit(query.limit + 1);
    },
  };
}
