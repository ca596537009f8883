import type { Role } from "../auth/principal.ts";

/**
 * `expired` is written when a newer invitation replaces a lapsed one; a pending invitation past its
 * `expiresAt` is shown as expired before that (see `invitationStatus`).
 */
export type InvitationStatus = "pending" | "accepted" | "revoked" | "expired";

export type Invitation = {
  id: string;
  orgId: string;
  /** As the inviter typed it; compared case-insensitively. */
  email: string;
  role: Role;
  /** null: every project of the organization. */
  projectIds: string[] | null;
  status: InvitationStatus;
  expiresAt: Date;
  invitedBy: string | null;
  acceptedBy: string | null;
  acceptedAt: Date | null;
  revokedAt: Date | null;
  sendCount: number;
  lastSentAt: Date;
  createdAt: Date;
};

/** The stored row: the invitation and the SHA-256 of its current token (the token itself is only in the email). */
export type InvitationRecord = Invitation & { tokenHash: string };

export type CreateInvitationInput = {
  email: string;
  role: Role;
  /** undefined or null: every project. */
  projectIds: string[] | null | undefined;
};

export type ListInvitationsInput = {
  limit: number;
  cursor: string | undefined;
  status: InvitationStatus | undefined;
};
