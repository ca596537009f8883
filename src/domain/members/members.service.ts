import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, encodeCursor, type Page } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { isId } from "../../lib/ids.ts";
import { auditEvent } from "../audit/audit-event.ts";
import type {
  MemberPrincipal,
  Principal,
  RequestContext,
  Role,
  Scope,
  UserPrincipal,
} from "../auth/principal.ts";
import { holdsAll, ORG_SCOPES, ROLE_SCOPES } from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { apiKeySummary, emitEvent } from "../webhooks/event-data.ts";
import type { Member } from "./members.types.ts";

/**
 * A signed-in user acting in one organization: their membership there decides their scopes.
 * undefined when they are not a member (or the organization is deleted) — the caller answers 404.
 */
export async function resolveMember(
  stores: Pick<Stores, "memberships">,
  user: UserPrincipal,
  orgId: string,
): Promise<MemberPrincipal | undefined> {
  const membership = await stores.memberships.findWithOrg(orgId, user.id);
  if (membership === undefined || membership.orgStatus === "deleted") {
    return undefined;
  }
  return {
    kind: "member",
    id: user.id,
    subject: user.subject,
    email: user.email,
    name: user.name,
    orgId,
    orgStatus: membership.orgStatus,
    role: membership.role,
    scopes: [...ROLE_SCOPES[membership.role]],
    projectIds: membership.projectIds,
    projectId: null,
  };
}

export type ListMembersInput = { limit: number; cursor: string | undefined; role: Role | undefined };

/** What the acting credential may grant: the operator everything, anyone else what they hold. */
function heldScopes(principal: Principal): readonly Scope[] {
  switch (principal.kind) {
    case "operator":
      return ORG_SCOPES;
    case "api_key":
    case "member":
      return principal.scopes;
    case "user":
      // A user reaches member routes only as a member principal; holding nothing is the safe reading.
      return [];
  }
}

/** "Above" a credential: the role's scopes are not all held by it (the operator is above everyone). */
function requireWithinCeiling(principal: Principal, role: Role, what: string): void {
  if (!holdsAll(heldScopes(principal), ROLE_SCOPES[role])) {
    throw new AppError("role_ceiling", `${what}: the '${role}' role holds scopes you do not hold`);
  }
}

export function createMembersService(deps: {
  db: Transactor;
  stores: Pick<Stores, "memberships" | "orgs">;
  clock: Clock;
}) {
  /** The member, or a 404 quoting the id the caller gave (any shape). */
  async function load(stores: Pick<Stores, "memberships">, orgId: string, userId: string): Promise<Member> {
    const member = isId("usr", userId) ? await stores.memberships.find(orgId, userId) : undefined;
    if (member === undefined) {
      throw notFound("Member", userId);
    }
    return member;
  }

  /** Membership changes of a deleted organization are refused: its rows stay only for the operator. */
  async function requireLiveOrg(stores: Pick<Stores, "orgs">, orgId: string): Promise<void> {
    const org = await loadOrg(stores, orgId);
    if (org.status === "deleted") {
      throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
    }
  }

  /** The owners of the organization other than `userId`; empty means `userId` is the last owner. */
  function otherOwners(owners: string[], userId: string): string[] {
    return owners.filter((id) => id !== userId);
  }

  return {
    resolve: (user: UserPrincipal, orgId: string) => resolveMember(deps.stores, user, orgId),

    async list(orgId: string, input: ListMembersInput): Promise<Page<Member>> {
      await loadOrg(deps.stores, orgId);
      const rows = await deps.stores.memberships.list({
        orgId,
        limit: input.limit,
        after: decodeCursor(input.cursor, "usr"),
        role: input.role,
      });
      const hasMore = rows.length > input.limit;
      const data = hasMore ? rows.slice(0, input.limit) : rows;
      const last = data.at(-1);
      return { data, hasMore, nextCursor: hasMore && last ? encodeCursor(last.userId) : null };
    },

    async get(orgId: string, userId: string): Promise<Member> {
      await loadOrg(deps.stores, orgId);
      return load(deps.stores, orgId, userId);
    },

    /**
     * Change a member's role. Nobody grants a role above their own or touches a member above them; the
     * owners are row-locked first, so of two parallel demotions of the last two owners one is refused.
     */
    async updateRole(ctx: RequestContext, orgId: string, userId: string, role: Role): Promise<Member> {
      await loadOrg(deps.stores, orgId);
      if (!isId("usr", userId)) {
        throw notFound("Member", userId);
      }
      return deps.db.transaction(async (stores) => {
        await requireLiveOrg(stores, orgId);
        const owners = await stores.memberships.lockOwners(orgId);
        const before = await load(stores, orgId, userId);
        requireWithinCeiling(ctx.principal, before.role, `Cannot change member '${userId}'`);
        requireWithinCeiling(ctx.principal, role, "Cannot grant this role");
        if (before.role === role) {
          return before;
        }
        if (before.role === "owner" && otherOwners(owners, userId).length === 0) {
          throw new AppError(
            "last_owner",
            `Member '${userId}' is the organization's last owner; make someone else owner first`,
          );
        }
        const now = deps.clock.now();
        await stores.memberships.updateRole(orgId, userId, role, now);
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "member.role_updated",
              targetType: "member",
              targetId: userId,
              changes: { role: { from: before.role, to: role } },
            },
            deps.clock,
          ),
        );
        await emitEvent(
          stores,
          orgId,
          "member.role_changed",
          {
            org_id: orgId,
            member: { user_id: userId, role, project_ids: before.projectIds },
            previous_role: before.role,
            changes: { role: { from: before.role, to: role } },
          },
          deps.clock,
        );
        return { ...before, role, updatedAt: now };
      });
    },

    /**
     * Remove a member (or leave, when it is the caller's own membership). Every API key the member
     * created in the organization is revoked in the same transaction: their keys must not outlive their
     * access. The last owner can neither be removed nor leave.
     */
    async remove(ctx: RequestContext, orgId: string, userId: string): Promise<void> {
      await loadOrg(deps.stores, orgId);
      if (!isId("usr", userId)) {
        throw notFound("Member", userId);
      }
      const leaving = ctx.principal.kind === "member" && ctx.principal.id === userId;
      await deps.db.transaction(async (stores) => {
        await requireLiveOrg(stores, orgId);
        const owners = await stores.memberships.lockOwners(orgId);
        const member = await load(stores, orgId, userId);
        if (!leaving) {
          requireWithinCeiling(ctx.principal, member.role, `Cannot remove member '${userId}'`);
        }
        if (member.role === "owner" && otherOwners(owners, userId).length === 0) {
          throw new AppError(
            "last_owner",
            `Member '${userId}' is the organization's last owner; make someone else owner first`,
          );
        }
        const now = deps.clock.now();
        await stores.memberships.delete(orgId, userId);
        const revoked = await stores.apiKeys.revokeCreatedBy(orgId, userId, now);
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: leaving ? "member.left" : "member.removed",
              targetType: "member",
              targetId: userId,
              changes: { role: { from: member.role, to: null } },
            },
            deps.clock,
          ),
        );
        await emitEvent(
          stores,
          orgId,
          "member.removed",
          {
            org_id: orgId,
            member: { user_id: userId, role: member.role, project_ids: member.projectIds },
            left: leaving,
            revoked_api_key_ids: revoked,
          },
          deps.clock,
        );
        for (const keyId of revoked) {
          // Revoked just above in this transaction, so found; the event tells the key as it now is.
          const key = await stores.apiKeys.find(orgId, keyId);
          if (key !== undefined) {
            await emitEvent(
              stores,
              orgId,
              "api_key.revoked",
              { org_id: orgId, api_key: apiKeySummary(key), reason: "creator_removed" },
              deps.clock,
            );
          }
          await stores.audit.insert(
            auditEvent(
              ctx,
              {
                orgId,
                action: "api_key.revoked",
                targetType: "api_key",
                targetId: keyId,
                changes: {
                  revoked_at: { from: null, to: now.toISOString() },
                  reason: { to: "creator_removed" },
                },
              },
              deps.clock,
            ),
          );
        }
      });
    },
  };
}

export type MembersService = ReturnType<typeof createMembersService>;
