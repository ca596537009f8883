import type { AuditEvent, AuditQuery } from "./audit.types.ts";

export type AuditStore = {
  insert(event: AuditEvent): Promise<void>;
  /** Newest first; `limit + 1` rows so the caller can tell whether more exist. */
  list(query: AuditQuery): Promise<AuditEvent[]>;
};
