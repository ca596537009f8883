import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { ScopeSchema } from "../../schemas/api-key.ts";
import { errorResponses } from "../../schemas/common.ts";

const MeSchema = z
  .discriminatedUnion("type", [
    z.object({
      type: z.literal("operator"),
      key_id: z.string(),
      name: z.string(),
    }),
    z.object({
      type: z.literal("api_key"),
      key_id: z.string(),
      name: z.string(),
      org_id: z.string(),
      project_id: z
        .string()
        .nullable()
        .openapi({ description: "null: the key is not restricted to a project" }),
      environment: z.enum(["live", "test"]),
      scopes: z.array(ScopeSchema),
    }),
    z.object({
      type: z.literal("user"),
      user_id: z.string(),
      subject: z.string().openapi({ description: "The identity provider's subject" }),
      email: z.string().nullable(),
      name: z.string().nullable(),
      active_org_id: z
        .string()
        .nullable()
        .openapi({ description: "The organization the token's org claim selects" }),
    }),
  ])
  .openapi("Me");

const route = createRoute({
  operationId: "getMe",
  method: "get",
  path: "/v1/me",
  tags: ["Auth"],
  summary: "Who the presenting credential is",
  description:
    "Like every route but reading the organization itself, refused for a suspended organization's keys.",
  ...guarded({ kind: "any" }),
  responses: {
    200: { description: "The principal", content: { "application/json": { schema: MeSchema } } },
    ...errorResponses(403),
  },
});

export function registerGetMe(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, (c) => {
    const p = c.var.principal;
    switch (p.kind) {
      case "operator":
        return c.json({ type: "operator" as const, key_id: p.id, name: p.name }, 200);
      case "user":
      case "member":
        return c.json(
          {
            type: "user" as const,
            user_id: p.id,
            subject: p.subject,
            email: p.email,
            name: p.name,
            active_org_id: p.kind === "member" ? p.orgId : p.activeOrgId,
          },
          200,
        );
      case "api_key":
        return c.json(
          {
            type: "api_key" as const,
            key_id: p.id,
            name: p.name,
            org_id: p.orgId,
            project_id: p.projectId,
            environment: p.environment,
            scopes: p.scopes,
          },
          200,
        );
    }
  });
}
