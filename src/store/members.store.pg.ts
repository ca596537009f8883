import { and, desc, eq, getTableColumns, lt } from "drizzle-orm";
import type { MembershipsStore, UsersStore } from "../domain/members/members.store.ts";
import type { Executor } from "./db.ts";
import { memberships } from "./schema/memberships.ts";
import { organizations } from "./schema/organizations.ts";
import { users } from "./schema/users.ts";

export function createUsersStore(db: Executor): UsersStore {
  return {
    async findBySubject(subject) {
      const [row] = await db.select().from(users).where(eq(users.subject, subject));
      return row;
    },
    async find(id) {
      const [row] = await db.select().from(users).where(eq(users.id, id));
      return row;
    },
    async upsertFromClaims(claims, id, at) {
      const profile = { email: claims.email, name: claims.name, avatarUrl: claims.avatarUrl };
      const [row] = await db
        .insert(users)
        .values({ id, subject: claims.subject, ...profile, createdAt: at, updatedAt: at, lastLoginAt: at })
        .onConflictDoUpdate({ target: users.subject, set: { ...profile, updatedAt: at, lastLoginAt: at } })
        .returning();
      if (row === undefined) {
        throw new Error("upsert returned no row");
      }
      return row;
    },
  };
}

export function createMembershipsStore(db: Executor): MembershipsStore {
  const memberColumns = { ...getTableColumns(memberships), user: getTableColumns(users) };
  return {
    async findWithOrg(orgId, userId) {
      const [row] = await db
        .select({ ...getTableColumns(memberships), orgStatus: organizations.status })
        .from(memberships)
        .innerJoin(organizations, eq(organizations.id, memberships.orgId))
        .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
      return row;
    },
    async find(orgId, userId) {
      const [row] = await db
        .select(memberColumns)
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
      return row;
    },
    async insert(membership) {
      await db.insert(memberships).values(membership);
    },
    async list(query) {
      const conditions = [eq(memberships.orgId, query.orgId)];
      if (query.after !== undefined) {
        conditions.push(lt(memberships.userId, query.after));
      }
      if (query.role !== undefined) {
        conditions.push(eq(memberships.role, query.role));
      }
      return db
        .select(memberColumns)
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(...conditions))
        .orderBy(desc(memberships.userId))
        .limit(query.limit + 1);
    },
    async updateRole(orgId, userId, role, at) {
      await db
        .update(memberships)
        .set({ role, updatedAt: at })
        .where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
    },
    async delete(orgId, userId) {
      await db.delete(memberships).where(and(eq(memberships.orgId, orgId), eq(memberships.userId, userId)));
    },
    async lockOwners(orgId) {
      const rows = await db
        .select({ userId: memberships.userId })
        .from(memberships)
        .where(and(eq(memberships.orgId, orgId), eq(memberships.role, "owner")))
        .for("update");
      return rows.map((r) => r.userId);
    },
  };
}
