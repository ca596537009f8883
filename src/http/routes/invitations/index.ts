import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerAcceptInvitation } from "./accept-invitation.ts";
import { registerCreateInvitation } from "./create-invitation.ts";
import { registerGetInvitation } from "./get-invitation.ts";
import { registerListInvitations } from "./list-invitations.ts";
import { registerResendInvitation } from "./resend-invitation.ts";
import { registerRevokeInvitation } from "./revoke-invitation.ts";

export function registerInvitationRoutes(api: OpenAPIHono<AppEnv>): void {
  registerCreateInvitation(api);
  registerListInvitations(api);
  registerGetInvitation(api);
  registerRevokeInvitation(api);
  registerResendInvitation(api);
  registerAcceptInvitation(api);
}
