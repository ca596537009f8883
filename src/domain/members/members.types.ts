import type { OrgStatus, Role } from "../auth/principal.ts";

export type User = {
  id: string;
  subject: string;
  email: string | null;
  name: string | null;
  avatarUrl: string | null;
  createdAt: Date;
  updatedAt: Date;
  lastLoginAt: Date | null;
};

export type Membership = {
  orgId: string;
  userId: string;
  role: Role;
  /** null: every project of the organization. */
  projectIds: string[] | null;
  invitedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
};

/** A membership with its user, as the members API shows it. */
export type Member = Membership & { user: User };

/** What authorization needs to turn a signed-in user into a member of one organization. */
export type MembershipWithOrg = Membership & { orgStatus: OrgStatus };

/** Claims of a verified identity token, mapped to a user. */
export type IdentityClaims = {
  subject: string;
  email: string | null;
  name: string | null;
  avatarUrl: string | null;
  orgId: string | null;
};
