import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, toList } from "../../schemas/common.ts";
import { INVITATION_STATUSES, InvitationSchema, toInvitationResponse } from "../../schemas/invitation.ts";

const route = createRoute({
  operationId: "listInvitations",
  method: "get",
  path: "/v1/organizations/{org_id}/invitations",
  tags: ["Invitations"],
  summary: "List invitations, newest first",
  ...guarded({ kind: "org", scope: "members:read" }),
  request: {
    params: OrgIdParams,
    query: z.strictObject({
      ...ListQuery,
      status: z.enum(INVITATION_STATUSES).optional().openapi({ description: "Default: every status" }),
    }),
  },
  responses: {
    200: {
      description: "A page of invitations",
      content: { "application/json": { schema: listOf(InvitationSchema, "InvitationList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListInvitations(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const invitations = c.var.services.invitations;
    const page = await invitations.list(org_id, { limit: q.limit, cursor: q.cursor, status: q.status });
    const now = invitations.now();
    return c.json(
      toList(page, (i) => toInvitationResponse(i, now)),
      200,
    );
  });
}
