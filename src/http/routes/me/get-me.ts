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
    if (p.kind === "operator") {
      return c.json({ type: "operator" as const, key_id: p.keyId, name: p.name }, 200);
    }
    return c.json(
      {
        type: "api_key" as const,
        key_id: p.keyId,
        name: p.name,
        org_id: p.orgId,
        project_id: null,
        environment: p.environment,
        scopes: p.scopes,
      },
      200,
    );
  });
}
