import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { registerGetMember } from "./get-member.ts";
import { registerListMembers } from "./list-members.ts";
import { registerRemoveMember } from "./remove-member.ts";
import { registerUpdateMember } from "./update-member.ts";

export function registerMemberRoutes(api: OpenAPIHono<AppEnv>): void {
  registerListMembers(api);
  registerGetMember(api);
  registerUpdateMember(api);
  registerRemoveMember(api);
}
