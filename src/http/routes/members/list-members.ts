import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, toList } from "../../schemas/common.ts";
import { MemberSchema, RoleSchema, toMemberResponse } from "../../schemas/member.ts";

const route = createRoute({
  operationId: "listMembers",
  method: "get",
  path: "/v1/organizations/{org_id}/members",
  tags: ["Members"],
  summary: "List the organization's members, newest user first",
  ...guarded({ kind: "org", scope: "members:read" }),
  request: {
    params: OrgIdParams,
    query: z.strictObject({
      ...ListQuery,
      role: RoleSchema.optional().openapi({ description: "Only members with this role" }),
    }),
  },
  responses: {
    200: {
      description: "A page of members",
      content: { "application/json": { schema: listOf(MemberSchema, "MemberList") } },
    },
    ...errorResponses(403, 404),
  },
});

export function registerListMembers(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.members.list(org_id, {
      limit: q.limit,
      cursor: q.cursor,
      role: q.role,
    });
    return c.json(toList(page, toMemberResponse), 200);
  });
}
