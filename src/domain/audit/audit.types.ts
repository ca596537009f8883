import type { JsonValue } from "../../lib/json.ts";

export type ActorType = "operator" | "api_key" | "user" | "system";

/** `{ field: { from, to } }`; secrets never appear here. */
export type AuditChanges = Record<string, { from?: JsonValue; to?: JsonValue }>;

export type AuditEvent = {
  id: string;
  orgId: string;
  actorType: ActorType;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  changes: AuditChanges;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  createdAt: Date;
};

export type AuditQuery = {
  orgId: string;
  limit: number;
  after: string | undefined;
  action: string | undefined;
  actorId: string | undefined;
  since: Date | undefined;
  until: Date | undefined;
};
