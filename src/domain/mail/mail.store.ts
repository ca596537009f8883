import type { OutboxMessage } from "./mail.types.ts";

export type MailOutboxStore = {
  /**
   * Insert a pending message through the caller's connection or transaction: inside a transaction the
   * message exists only if the transaction commits, and senders are woken only then.
   */
  enqueue(message: OutboxMessage): Promise<void>;
  /**
   * Claim up to `limit` pending messages due at `now`, across organizations (this is the sender's sweep, not
   * a tenant query): each one's attempt count goes up by one and it is hidden from other claimers until
   * `leaseUntil`, so a sender that dies mid-send leaves it to be retried. Safe with several processes.
   */
  claimDue(now: Date, leaseUntil: Date, limit: number): Promise<OutboxMessage[]>;
  markDelivered(id: string, status: "sent" | "logged", at: Date): Promise<void>;
  markRetry(id: string, nextAttemptAt: Date, error: string): Promise<void>;
  markFailed(id: string, error: string): Promise<void>;
  /** The organization's messages, newest first (for operators and tests). */
  listForOrg(orgId: string, limit: number): Promise<OutboxMessage[]>;
};

/** Tells a sender that something may be due (a commit that enqueued mail, in any process). */
export type MailWakeSource = {
  start(onWake: () => void): Promise<void>;
  stop(): Promise<void>;
};
