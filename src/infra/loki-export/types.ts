import type { IntegrationConfig, IntegrationResult } from "../../domain/integrations/integrations.types.ts";
import type { OutboundClient } from "../outbound-http.ts";

/*
 * The ports the Loki exporter is built on: the parts of the integrations service, the outbound client and
 * src/store/loki-export.store.pg.ts it uses, so its tests build it over a test context's services and database.
 */

/**
 * What the exporter needs of one org's Loki integration: the endpoint (the push URL …/loki/api/v1/push, or the
 * Loki base URL the path is appended to), the basic-auth id and decrypted token, and when it was configured
 * (the org's audit events from about then on are exported).
 */
export type LokiTarget = Pick<IntegrationConfig, "orgId" | "endpoint" | "id" | "token" | "createdAt">;

/** The integrations service, as far as the exporter reads and reports through it. */
export type LokiIntegrations = {
  /** Every org's Loki integration, tokens decrypted (cached by the service for a few seconds). */
  active(kind: "loki"): Promise<readonly LokiTarget[]>;
  /** Many orgs' outcomes in one statement; dropped counts are increments since the previous report. */
  recordResults(results: readonly IntegrationResult[]): Promise<void>;
};

/** The SSRF-guarded client of src/infra/outbound-http.ts (its errors never hold a header). */
export type OutboundPoster = Pick<OutboundClient, "post">;

/** One audit event, as read for export; `changesJson` is the stored jsonb as text, spliced unparsed. */
export type AuditLogRow = {
  id: string;
  orgId: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string;
  changesJson: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  createdAt: Date;
};

/**
 * How far an org's audit trail was exported: every event minted before `throughMs` was sent (or dropped and
 * counted), except events committed late, which a restart reads again from a little earlier; `recentIds` are
 * the ones of that earlier stretch already sent, so they are not sent twice.
 */
export type AuditCursor = { throughMs: number; recentIds: readonly string[] };

/**
 * Where audit events are read from, by one process at a time. `lead()` takes (or confirms) the exporter's
 * lock: only the process holding it reads events and saves cursors, so two processes never both send them.
 */
export type LokiAuditSource = {
  /** True while this process holds the lock (taken now if free); false while another process does. */
  lead(): Promise<boolean>;
  /**
   * The orgs' events with `afterId < id < beforeId`, in id order, at most `limit`; every organization's when
   * `orgIds` is undefined (the reader then drops the others' itself).
   */
  read(query: {
    orgIds: readonly string[] | undefined;
    afterId: string;
    beforeId: string;
    limit: number;
  }): Promise<AuditLogRow[]>;
  /** The saved cursors of these orgs (orgs without one are absent). */
  loadCursors(orgIds: readonly string[]): Promise<Map<string, AuditCursor>>;
  /** Save cursors, one statement. */
  saveCursors(cursors: ReadonlyArray<{ orgId: string } & AuditCursor>): Promise<void>;
  /** Give the lock up and close the connection that held it. */
  close(): Promise<void>;
};
