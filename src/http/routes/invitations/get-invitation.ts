import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { InvitationParams, InvitationSchema, toInvitationResponse } from "../../schemas/invitation.ts";

const route = createRoute({
  operationId: "getInvitation",
  method: "get",
  path: "/v1/organizations/{org_id}/invitations/{invitation_id}",
  tags: ["Invitations"],
  summary: "Get an invitation",
  ...guarded({ kind: "org", scope: "members:read" }),
  request: { params: InvitationParams },
  responses: {
    200: { description: "The invitation", content: { "application/json": { schema: InvitationSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetInvitation(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, invitation_id } = c.req.valid("param");
    const invitations = c.var.services.invitations;
    const invitation = await invitations.get(org_id, invitation_id);
    return c.json(toInvitationResponse(invitation, invitations.now()), 200);
  });
}
