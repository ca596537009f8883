import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { MemberParams, MemberSchema, toMemberResponse, UpdateMemberBody } from "../../schemas/member.ts";

const route = createRoute({
  operationId: "updateMember",
  method: "patch",
  path: "/v1/organizations/{org_id}/members/{member_id}",
  tags: ["Members"],
  summary: "Change a member's role",
  description:
    "Nobody grants a role above their own or changes a member whose role is above theirs (403 role_ceiling); " +
    "the last owner cannot be demoted (409 last_owner).",
  ...guarded({ kind: "org", scope: "members:write" }),
  request: {
    params: MemberParams,
    body: { required: true, content: { "application/json": { schema: UpdateMemberBody } } },
  },
  responses: {
    200: { description: "The member", content: { "application/json": { schema: MemberSchema } } },
    ...errorResponses(403, 404, 409, 413, 415),
  },
});

export function registerUpdateMember(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, member_id } = c.req.valid("param");
    const { role } = c.req.valid("json");
    const member = await c.var.services.members.updateRole(c.var.ctx, org_id, member_id, role);
    return c.json(toMemberResponse(member), 200);
  });
}
