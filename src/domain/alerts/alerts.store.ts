import type { Alert, AlertRecipients, AlertType } from "./alerts.types.ts";

export type AlertsStore = {
  /**
   * `INSERT … ON CONFLICT (org_id, type, period_start) DO NOTHING`: the alert when this call recorded it,
   * undefined when that organization, type and period already had one (in any process, committed or not —
   * a racing insert waits for the other transaction and then finds its row).
   */
  insertIfAbsent(alert: Alert): Promise<Alert | undefined>;
  /** The alert, row-locked for the rest of the transaction (the delivery job). */
  findForUpdate(id: string): Promise<Alert | undefined>;
  find(orgId: string, type: AlertType, periodStart: Date): Promise<Alert | undefined>;
  markSent(id: string, at: Date): Promise<void>;
  /** The organization's alerts of one period (for `alert_emails`). */
  listForPeriod(orgId: string, periodStart: Date): Promise<Alert[]>;
  /** Newest first by id, `limit + 1` rows. */
  list(query: { orgId: string; limit: number; after: string | undefined }): Promise<Alert[]>;
  /** Alerts never delivered and created before `before`, across organizations (the delivery sweep). */
  listUndelivered(before: Date, limit: number): Promise<string[]>;
  /** The organization's names, billing email and the emails of its owners and billing members. */
  recipients(orgId: string): Promise<AlertRecipients | undefined>;
};
