import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { InvitationParams, InvitationSchema, toInvitationResponse } from "../../schemas/invitation.ts";

const route = createRoute({
  operationId: "revokeInvitation",
  method: "delete",
  path: "/v1/organizations/{org_id}/invitations/{invitation_id}",
  tags: ["Invitations"],
  summary: "Revoke a pending invitation",
  description: "Its token stops working at once. 409 invalid_state_transition when it is not pending.",
  ...guarded({ kind: "org", scope: "members:write" }),
  request: { params: InvitationParams },
  responses: {
    200: {
      description: "The revoked invitation",
      content: { "application/json": { schema: InvitationSchema } },
    },
    ...errorResponses(403, 404, 409),
  },
});

export function registerRevokeInvitation(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, invitation_id } = c.req.valid("param");
    const invitations = c.var.services.invitations;
    const invitation = await invitations.revoke(c.var.ctx, org_id, invitation_id);
    return c.json(toInvitationResponse(invitation, invitations.now()), 200);
  });
}
