export type MailStatus = "pending" | "sent" | "failed" | "logged";

/** One row of the outbox: an email Orgplane promised to attempt. */
export type OutboxMessage = {
  id: string;
  orgId: string;
  toAddress: string;
  subject: string;
  /** May hold a single-use secret (an invitation token): it is never logged. */
  textBody: string;
  /** What the message is about (`invitation`), for the log and operators. */
  kind: string;
  status: MailStatus;
  /** Delivery attempts started so far (a claim counts as one). */
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
  createdAt: Date;
  sentAt: Date | null;
};

/** What a service asks to send. */
export type MailDraft = {
  orgId: string;
  to: string;
  subject: string;
  text: string;
  kind: string;
};
