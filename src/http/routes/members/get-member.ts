import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses } from "../../schemas/common.ts";
import { MemberParams, MemberSchema, toMemberResponse } from "../../schemas/member.ts";

const route = createRoute({
  operationId: "getMember",
  method: "get",
  path: "/v1/organizations/{org_id}/members/{member_id}",
  tags: ["Members"],
  summary: "Get a member",
  ...guarded({ kind: "org", scope: "members:read" }),
  request: { params: MemberParams },
  responses: {
    200: { description: "The member", content: { "application/json": { schema: MemberSchema } } },
    ...errorResponses(403, 404),
  },
});

export function registerGetMember(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id, member_id } = c.req.valid("param");
    const member = await c.var.services.members.get(org_id, member_id);
    return c.json(toMemberResponse(member), 200);
  });
}
