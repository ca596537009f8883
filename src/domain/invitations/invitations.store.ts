import type { Invitation, InvitationRecord, InvitationStatus } from "./invitations.types.ts";

export type InvitationsStore = {
  /** false when the address already has a pending invitation in this organization (nothing is written). */
  insert(invitation: InvitationRecord): Promise<boolean>;
  find(orgId: string, id: string): Promise<Invitation | undefined>;
  /** Row-locked for the rest of the transaction. */
  findForUpdate(orgId: string, id: string): Promise<Invitation | undefined>;
  /**
   * The invitation a token names, in whichever organization: the token itself is the capability, so this is
   * the one lookup not scoped by an organization id. Callers lock it through `findForUpdate` afterwards.
   */
  findByTokenHash(tokenHash: string): Promise<Invitation | undefined>;
  /** Newest first, `limit + 1` rows; `pending` and `expired` are judged at `now`. */
  list(query: {
    orgId: string;
    limit: number;
    after: string | undefined;
    status: InvitationStatus | undefined;
    now: Date;
  }): Promise<Invitation[]>;
  /** Mark this address's lapsed pending invitations `expired`, so a new one can be pending. */
  expireLapsed(orgId: string, email: string, now: Date): Promise<void>;
  update(
    orgId: string,
    id: string,
    patch: Partial<
      Pick<
        InvitationRecord,
        | "status"
        | "tokenHash"
        | "expiresAt"
        | "acceptedBy"
        | "acceptedAt"
        | "revokedAt"
        | "sendCount"
        | "lastSentAt"
      >
    >,
  ): Promise<Invitation>;
  /** Which of `projectIds` are live projects of the organization. */
  existingProjectIds(orgId: string, projectIds: readonly string[]): Promise<string[]>;
  /** Whether a user with this email (case-insensitive) is a member of the organization. */
  isMemberByEmail(orgId: string, email: string): Promise<boolean>;
};
