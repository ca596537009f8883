import type { MailDraft } from "../mail/mail.types.ts";
import type { Invitation } from "./invitations.types.ts";

/**
 * The page a product's dashboard serves for accepting an invitation. The token travels in the fragment, which
 * browsers never send to a server: it stays out of access logs and Referer headers on the way to the page.
 */
export const ACCEPT_PATH = "/invitations/accept";

export function acceptLink(publicUrl: string, token: string): string {
  return `${publicUrl}${ACCEPT_PATH}#token=${token}`;
}

export function invitationEmail(input: {
  invitation: Invitation;
  orgName: string;
  token: string;
  publicUrl: string;
}): MailDraft {
  const { invitation, orgName, token, publicUrl } = input;
  const text = [
    `You have been invited to join the organization "${orgName}" as ${invitation.role}.`,
    "",
    "Accept the invitation here:",
    acceptLink(publicUrl, token),
    "",
    `Or, signed in as ${invitation.email}, send this token to ${publicUrl}/v1/invitations/accept as {"token": "…"}:`,
    token,
    "",
    `The invitation expires at ${invitation.expiresAt.toISOString()} and works once.`,
    "If you did not expect it, ignore this email.",
  ].join("\n");
  return {
    orgId: invitation.orgId,
    to: invitation.email,
    subject: `You're invited to join ${orgName}`,
    text,
    kind: "invitation",
  };
}
