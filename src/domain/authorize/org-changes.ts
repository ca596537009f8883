/**
 * Signals that something authorizing a key depends on changed for an organization (a key revoked, rotated
 * or edited, the organization suspended or deleted, a project deleted, a rate-limit override, the
 * subscription), committed by any process. The PostgreSQL implementation (store/org-changes.pg.ts)
 * LISTENs for what triggers NOTIFY in the changing transaction.
 */
export type OrgChangeHandlers = {
  /** Everything cached about `orgId` is stale. */
  changed(orgId: string): void;
  /** Signals may have been missed (the listener (re)connected): everything cached is stale. */
  reset(): void;
};

export type OrgChangeSource = {
  start(handlers: OrgChangeHandlers): Promise<void>;
  /** True while signals arrive; while false (not started, reconnecting), caches must not be trusted. */
  listening(): boolean;
  stop(): Promise<void>;
};
