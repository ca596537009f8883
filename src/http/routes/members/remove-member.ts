import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { MemberParams } from "../../schemas/member.ts";

const route = createRoute({
  operationId: "removeMember",
  method: "delete",
  path: "/v1/organizations/{org_id}/members/{member_id}",
  tags: ["Members"],
  summary: "Remove a member, or leave the organization",
  description:
    "Revokes every API key the member created in the organization. A member may remove themselves " +
    "(leave) without `members:write`. Nobody removes a member whose role is above theirs (403 " +
    "role_ceiling); the last owner cannot be removed (409 last_owner).",
  ...guarded({ kind: "org", scope: "members:write", selfExempt: true }),
  request: { params: MemberParams },
  responses: {
    204: { description: "Removed" },
    ...errorResponses(403, 404, 409),
  },
});

export function registerRemoveMember(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, member_id } = c.req.valid("param");
    await c.var.services.members.remove(c.var.ctx, org_id, member_id);
    return c.body(null, 204);
  });
}
