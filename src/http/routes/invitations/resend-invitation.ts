import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { InvitationParams, InvitationSchema, toInvitationResponse } from "../../schemas/invitation.ts";

const route = createRoute({
  operationId: "resendInvitation",
  method: "post",
  path: "/v1/organizations/{org_id}/invitations/{invitation_id}/resend",
  tags: ["Invitations"],
  summary: "Send a pending invitation again",
  description:
    "Mints a new token (the previous one stops working), restarts the 7 days, and emails it. " +
    "Works on a pending invitation that has expired; 409 invalid_state_transition otherwise.",
  ...guarded({ kind: "org", scope: "members:write" }),
  request: { params: InvitationParams },
  responses: {
    200: { description: "The invitation", content: { "application/json": { schema: InvitationSchema } } },
    ...errorResponses(403, 404, 409, 422),
  },
});

export function registerResendInvitation(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, invitation_id } = c.req.valid("param");
    const invitations = c.var.services.invitations;
    const invitation = await invitations.resend(c.var.ctx, org_id, invitation_id);
    return c.json(toInvitationResponse(invitation, invitations.now()), 200);
  });
}
