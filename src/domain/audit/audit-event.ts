import type { Clock } from "../../lib/clock.ts";
import { newId } from "../../lib/ids.ts";
import type { JsonValue } from "../../lib/json.ts";
import type { RequestContext } from "../auth/principal.ts";
import type { AuditChanges, AuditEvent } from "./audit.types.ts";

export type AuditRecord = {
  orgId: string;
  action: string;
  targetType: string;
  targetId: string;
  changes: AuditChanges;
};

/** Build the audit event for a mutation; the caller inserts it in the mutation's own transaction. */
export function auditEvent(ctx: RequestContext, record: AuditRecord, clock: Clock): AuditEvent {
  return {
    id: newId("aud"),
    ...record,
    actorType: ctx.principal.kind === "member" ? "user" : ctx.principal.kind,
    actorId: ctx.principal.id,
    ip: ctx.ip,
    userAgent: ctx.userAgent,
    requestId: ctx.requestId,
    createdAt: clock.now(),
  };
}

/**
 * `{ field: { from, to } }` between two views of a resource in API field names: every field on
 * creation (`before` undefined), only the changed ones otherwise.
 */
export function diffViews(
  before: Record<string, JsonValue> | undefined,
  after: Record<string, JsonValue>,
): AuditChanges {
  const changes: AuditChanges = {};
  for (const [field, to] of Object.entries(after)) {
    if (before === undefined) {
      changes[field] = { to };
      continue;
    }
    const from = before[field] ?? null;
    if (JSON.stringify(from) !== JSON.stringify(to)) {
      changes[field] = { from, to };
    }
  }
  return changes;
}
