import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AuditEvent } from "../../../domain/audit/audit.types.ts";
import type { AppEnv } from "../../env.ts";
import { guarded } from "../../middleware/access.ts";
import { errorResponses, ListQuery, listOf, OrgIdParams, Timestamp, toList } from "../../schemas/common.ts";

const AuditEventSchema = z
  .object({
    id: z.string(),
    object: z.literal("audit_event"),
    org_id: z.string(),
    actor_type: z.enum(["operator", "api_key", "user", "system"]),
    actor_id: z.string().nullable(),
    action: z.string().openapi({ example: "organization.updated" }),
    target_type: z.string(),
    target_id: z.string(),
    changes: z.record(z.string(), z.object({ from: z.unknown().optional(), to: z.unknown().optional() })),
    ip: z.string().nullable(),
    user_agent: z.string().nullable(),
    request_id: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi("AuditEvent");

const route = createRoute({
  operationId: "listAuditEvents",
  method: "get",
  path: "/v1/organizations/{org_id}/audit-events",
  tags: ["Audit"],
  summary: "List the organization's audit events, newest first",
  ...guarded({ kind: "org", scope: "audit:read" }),
  request: {
    params: OrgIdParams,
    query: z.strictObject({
      ...ListQuery,
      action: z.string().trim().min(1).max(64).optional().openapi({ example: "organization.updated" }),
      actor_id: z.string().trim().min(1).max(64).optional(),
      since: Timestamp.optional().openapi({ description: "Events at or after this instant" }),
      until: Timestamp.optional().openapi({ description: "Events before this instant" }),
    }),
  },
  responses: {
    200: {
      description: "A page of audit events",
      content: { "application/json": { schema: listOf(AuditEventSchema, "AuditEventList") } },
    },
    ...errorResponses(403, 404),
  },
});

function toAuditEventResponse(e: AuditEvent): z.infer<typeof AuditEventSchema> {
  return {
    id: e.id,
    object: "audit_event",
    org_id: e.orgId,
    actor_type: e.actorType,
    actor_id: e.actorId,
    action: e.action,
    target_type: e.targetType,
    target_id: e.targetId,
    changes: e.changes,
    ip: e.ip,
    user_agent: e.userAgent,
    request_id: e.requestId,
    created_at: e.createdAt.toISOString(),
  };
}

export function registerListAuditEvents(api: OpenAPIHono<AppEnv>): void {
  api.openapi(route, async (c) => {
    const { org_id } = c.req.valid("param");
    const q = c.req.valid("query");
    const page = await c.var.services.audit.list(org_id, {
      limit: q.limit,
      cursor: q.cursor,
      action: q.action,
      actorId: q.actor_id,
      since: q.since === undefined ? undefined : new Date(q.since),
      until: q.until === undefined ? undefined : new Date(q.until),
    });
    return c.json(toList(page, toAuditEventResponse), 200);
  });
}
