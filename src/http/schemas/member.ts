import { z } from "@hono/zod-openapi";
import { ROLES } from "../../domain/auth/principal.ts";
import type { Member } from "../../domain/members/members.types.ts";
import { idParam, OrgIdParams, Timestamp } from "./common.ts";

export const RoleSchema = z.enum(ROLES).openapi("Role", {
  description: "Each role is a fixed set of scopes; see docs/roles.md",
});

export const MemberParams = OrgIdParams.extend({
  member_id: idParam("member_id", "usr_01jd0v4n6qf9yb5c8h2m3k7x1z").openapi({
    description: "The member's user id",
  }),
});

export const UpdateMemberBody = z
  .strictObject({
    role: RoleSchema.openapi({ description: "Never above the caller's own role" }),
  })
  .openapi("UpdateMember");

export const MemberSchema = z
  .object({
    object: z.literal("member"),
    org_id: z.string(),
    user_id: z.string().openapi({ example: "usr_01jd0v4n6qf9yb5c8h2m3k7x1z" }),
    role: RoleSchema,
    project_ids: z
      .array(z.string())
      .nullable()
      .openapi({ description: "null: every project of the organization" }),
    email: z.string().nullable(),
    name: z.string().nullable(),
    avatar_url: z.string().nullable(),
    created_at: Timestamp.openapi({ description: "When the user joined the organization" }),
    updated_at: Timestamp,
  })
  .openapi("Member");

export function toMemberResponse(member: Member): z.infer<typeof MemberSchema> {
  return {
    object: "member",
    org_id: member.orgId,
    user_id: member.userId,
    role: member.role,
    project_ids: member.projectIds,
    email: member.user.email,
    name: member.user.name,
    avatar_url: member.user.avatarUrl,
    created_at: member.createdAt.toISOString(),
    updated_at: member.updatedAt.toISOString(),
  };
}
