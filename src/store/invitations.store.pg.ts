import { and, desc, eq, getTableColumns, gt, inArray, isNull, lt, lte, or, type SQL, sql } from "drizzle-orm";
import type { InvitationsStore } from "../domain/invitations/invitations.store.ts";
import type { Executor } from "./db.ts";
import { invitations } from "./schema/invitations.ts";
import { memberships } from "./schema/memberships.ts";
import { projects } from "./schema/projects.ts";
import { users } from "./schema/users.ts";

/** Every column but the token hash: nothing read back for display carries it. */
const { tokenHash: _tokenHash, ...invitationColumns } = getTableColumns(invitations);

function sameEmail(email: string): SQL {
  return sql`lower(${invitations.email}) = lower(${email})`;
}

export function createInvitationsStore(db: Executor): InvitationsStore {
  return {
    async insert(invitation) {
      // The partial unique index allows one pending invitation per address and organization; of two racing
      // invites exactly one is inserted and the other learns it here, without aborting the transaction.
      const rows = await db
        .insert(invitations)
        .values(invitation)
        .onConflictDoNothing()
        .returning({ id: invitations.id });
      return rows.length === 1;
    },

    async find(orgId, id) {
      const [row] = await db
        .select(invitationColumns)
        .from(invitations)
        .where(and(eq(invitations.orgId, orgId), eq(invitations.id, id)));
      return row;
    },

    async findForUpdate(orgId, id) {
      const [row] = await db
        .select(invitationColumns)
        .from(invitations)
        .where(and(eq(invitations.orgId, orgId), eq(invitations.id, id)))
        .for("update");
      return row;
    },

    async findByTokenHash(tokenHash) {
      const [row] = await db
        .select(invitationColumns)
        .from(invitations)
        .where(eq(invitations.tokenHash, tokenHash));
      return row;
    },

    async list(query) {
      const conditions: (SQL | undefined)[] = [eq(invitations.orgId, query.orgId)];
      if (query.after !== undefined) {
        conditions.push(lt(invitations.id, query.after));
      }
      if (query.status === "pending") {
        conditions.push(eq(invitations.status, "pending"), gt(invitations.expiresAt, query.now));
      } else if (query.status === "expired") {
        conditions.push(
          or(
            eq(invitations.status, "expired"),
            and(eq(invitations.status, "pending"), lte(invitations.expiresAt, query.now)),
          ),
        );
      } else if (query.status !== undefined) {
        conditions.push(eq(invitations.status, query.status));
      }
      return db
        .select(invitationColumns)
        .from(invitations)
        .where(and(...conditions))
        .orderBy(desc(invitations.id))
        .limit(query.limit + 1);
    },

    async expireLapsed(orgId, email, now) {
      await db
        .update(invitations)
        .set({ status: "expired" })
        .where(
          and(
            eq(invitations.orgId, orgId),
            sameEmail(email),
            eq(invitations.status, "pending"),
            lte(invitations.expiresAt, now),
          ),
        );
    },

    async update(orgId, id, patch) {
      const [row] = await db
        .update(invitations)
        .set(patch)
        .where(and(eq(invitations.orgId, orgId), eq(invitations.id, id)))
        .returning(invitationColumns);
      if (row === undefined) {
        throw new Error(`invitation ${id} vanished during its update`);
      }
      return row;
    },

    async existingProjectIds(orgId, projectIds) {
      const rows = await db
        .select({ id: projects.id })
        .from(projects)
        .where(
          and(eq(projects.orgId, orgId), inArray(projects.id, [...projectIds]), isNull(projects.deletedAt)),
        );
      return rows.map((r) => r.id);
    },

    async isMemberByEmail(orgId, email) {
      const rows = await db
        .select({ userId: memberships.userId })
        .from(memberships)
        .innerJoin(users, eq(users.id, memberships.userId))
        .where(and(eq(memberships.orgId, orgId), sql`lower(${users.email}) = lower(${email})`))
        .limit(1);
      return rows.length > 0;
    },
  };
}
