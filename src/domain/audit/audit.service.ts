import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores } from "../stores.ts";
import type { AuditEvent } from "./audit.types.ts";

export type ListAuditInput = {
  limit: number;
  cursor: string | undefined;
  action: string | undefined;
  actorId: string | undefined;
  since: Date | undefined;
  until: Date | undefined;
};

export function createAuditService(deps: { stores: Pick<Stores, "audit" | "orgs"> }) {
  return {
    async list(orgId: string, input: ListAuditInput): Promise<Page<AuditEvent>> {
      await loadOrg(deps.stores, orgId);
      const rows = await deps.stores.audit.list({
        orgId,
        limit: input.limit,
        after: decodeCursor(input.cursor, "aud"),
        action: input.action,
        actorId: input.actorId,
        since: input.since,
        until: input.until,
      });
      return toPage(rows, input.limit);
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
