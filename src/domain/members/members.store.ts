import type { IdentityClaims, Member, Membership, MembershipWithOrg, User } from "./members.types.ts";

export type UsersStore = {
  findBySubject(subject: string): Promise<User | undefined>;
  find(id: string): Promise<User | undefined>;
  /** Insert the user for `claims.subject`, or refresh its profile fields; returns the row. */
  upsertFromClaims(claims: IdentityClaims, newId: string, at: Date): Promise<User>;
};

export type MembershipsStore = {
  findWithOrg(orgId: string, userId: string): Promise<MembershipWithOrg | undefined>;
  find(orgId: string, userId: string): Promise<Member | undefined>;
  insert(membership: Membership): Promise<void>;
  /** Newest first by user id, `limit + 1` rows. */
  list(query: {
    orgId: string;
    limit: number;
    after: string | undefined;
    role: Membership["role"] | undefined;
  }): Promise<Member[]>;
  updateRole(orgId: string, userId: string, role: Membership["role"], at: Date): Promise<void>;
  delete(orgId: string, userId: string): Promise<void>;
  /** Owners of the organization, row-locked for the rest of the transaction. */
  lockOwners(orgId: string): Promise<string[]>;
};
