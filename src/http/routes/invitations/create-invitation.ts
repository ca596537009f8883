import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, OrgIdParams } from "../../schemas/common.ts";
import { CreateInvitationBody, InvitationSchema, toInvitationResponse } from "../../schemas/invitation.ts";

const route = createRoute({
  operationId: "createInvitation",
  method: "post",
  path: "/v1/organizations/{org_id}/invitations",
  tags: ["Invitations"],
  summary: "Invite someone by email",
  description:
    "Emails a single-use token, valid 7 days. 409 invitation_pending when the address already has a pending " +
    "invitation, 409 already_member when it belongs to a member, 403 role_ceiling for a role above the inviter's.",
  ...guarded({ kind: "org", scope: "members:write" }),
  request: {
    params: OrgIdParams,
    body: { required: true, content: { "application/json": { schema: CreateInvitationBody } } },
  },
  responses: {
    201: { description: "The invitation", content: { "application/json": { schema: InvitationSchema } } },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

export function registerCreateInvitation(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const body = c.req.valid("json");
    const invitations = c.var.services.invitations;
    const invitation = await invitations.create(c.var.ctx, org_id, {
      email: body.email,
      role: body.role,
      projectIds: body.project_ids,
    });
    return c.json(toInvitationResponse(invitation, invitations.now()), 201);
  });
}
