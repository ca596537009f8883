import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { AcceptInvitationBody, InvitationSchema, toInvitationResponse } from "../../schemas/invitation.ts";

const route = createRoute({
  operationId: "acceptInvitation",
  method: "post",
  path: "/v1/invitations/accept",
  tags: ["Invitations"],
  summary: "Accept an invitation (signed-in user)",
  description:
    "The signed-in user whose email matches the invitation becomes a member with its role and projects. " +
    "404 for an unknown, used, revoked or replaced token; 410 invitation_expired; " +
    "403 invitation_email_mismatch; 409 already_member.",
  ...guarded({ kind: "user" }),
  request: { body: { required: true, content: { "application/json": { schema: AcceptInvitationBody } } } },
  responses: {
    200: {
      description: "The accepted invitation",
      content: { "application/json": { schema: InvitationSchema } },
    },
    410: { description: "The invitation expired" },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerAcceptInvitation(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const invitations = c.var.services.invitations;
    const invitation = await invitations.accept(c.var.ctx, c.req.valid("json").token);
    return c.json(toInvitationResponse(invitation, invitations.now()), 200);
  });
}
