import type { Clock } from "../../lib/clock.ts";
import { newId } from "../../lib/ids.ts";
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
