import { z } from "@hono/zod-openapi";
import { ROLES } from "../../domain/auth/principal.ts";
import { invitationStatus } from "../../domain/invitations/invitations.service.ts";
import type { Invitation } from "../../domain/invitations/invitations.types.ts";
import { idParam, Timestamp } from "./common.ts";

export const INVITATION_STATUSES = ["pending", "accepted", "revoked", "expired"] as const;

const RoleSchema = z.enum(ROLES).openapi("Role");

export const CreateInvitationBody = z
  .strictObject({
    email: z.string().trim().max(254).pipe(z.email()).openapi({ example: "ada@example.com" }),
    role: RoleSchema.openapi({
      description: "The role the invitee gets; at most the inviter's own (else 403 role_ceiling)",
    }),
    project_ids: z.array(z.string().trim().min(1).max(64)).max(100).nullable().optional().openapi({
      description:
        "Projects of this organization the member may see; absent or null: every project. Unknown ids are a 400.",
    }),
  })
  .openapi("CreateInvitation");

export const AcceptInvitationBody = z
  .strictObject({
    token: z
      .string()
      .trim()
      .min(32)
      .max(128)
      .regex(/^[A-Za-z0-9_-]+$/, "an invitation token is base64url")
      .openapi({ description: "The token from the invitation email" }),
  })
  .openapi("AcceptInvitation");

export const InvitationSchema = z
  .object({
    object: z.literal("invitation"),
    id: z.string().openapi({ example: "inv_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    org_id: z.string(),
    email: z.string(),
    role: RoleSchema,
    project_ids: z.array(z.string()).nullable().openapi({ description: "null: every project" }),
    status: z.enum(INVITATION_STATUSES),
    expires_at: Timestamp,
    invited_by: z.string().nullable().openapi({ description: "Id of the operator key, API key or user" }),
    accepted_by: z.string().nullable().openapi({ description: "The user who accepted" }),
    accepted_at: Timestamp.nullable(),
    revoked_at: Timestamp.nullable(),
    send_count: z.number().int(),
    last_sent_at: Timestamp,
    created_at: Timestamp,
  })
  .openapi("Invitation", { description: "Never carries the token or its hash." });

export const InvitationParams = z.object({
  org_id: idParam("org_id", "org_01jd0v4n6qf9yb5c8h2m3k7x1z"),
  invitation_id: idParam("invitation_id", "inv_01jd0v4n6qf9yb5c8h2m3k7x1z"),
});

export function toInvitationResponse(invitation: Invitation, now: Date): z.infer<typeof InvitationSchema> {
  return {
    object: "invitation",
    id: invitation.id,
    org_id: invitation.orgId,
    email: invitation.email,
    role: invitation.role,
    project_ids: invitation.projectIds,
    status: invitationStatus(invitation, now),
    expires_at: invitation.expiresAt.toISOString(),
    invited_by: invitation.invitedBy,
    accepted_by: invitation.acceptedBy,
    accepted_at: invitation.acceptedAt?.toISOString() ?? null,
    revoked_at: invitation.revokedAt?.toISOString() ?? null,
    send_count: invitation.sendCount,
    last_sent_at: invitation.lastSentAt.toISOString(),
    created_at: invitation.createdAt.toISOString(),
  };
}
