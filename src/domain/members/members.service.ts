import type { MemberPrincipal, UserPrincipal } from "../auth/principal.ts";
import { ROLE_SCOPES } from "../auth/principal.ts";
import type { Stores } from "../stores.ts";

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
    projectId: null,
    projectIds: membership.projectIds,
  };
}

export function createMembersService(deps: { stores: Pick<Stores, "memberships"> }) {
  return {
    resolve: (user: UserPrincipal, orgId: string) => resolveMember(deps.stores, user, orgId),
  };
}

export type MembersService = ReturnType<typeof createMembersService>;
