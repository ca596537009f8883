import { index, integer, pgTable, text, timestamp } from "drizzle-orm/pg-core";

/**
 * Outgoing email, written in the transaction of what caused it and sent after commit by the mailer
 * (SMTP when configured). A row is the durable promise that the message will be attempted.
 */
export const mailOutbox = pgTable(
  "mail_outbox",
  {
    id: text("id").primaryKey(),
    orgId: text("org_id").notNull(),
    toAddress: text("to_address").notNull(),
    subject: text("subject").notNull(),
    textBody: text("text_body").notNull(),
    /** What the message is about, for the log and operators (e.g. `invitation`); never the body. */
    kind: text("kind").notNull(),
    status: text("status").$type<"pending" | "sent" | "failed" | "logged">().notNull(),
    attempts: integer("attempts").notNull(),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull(),
    lastError: text("last_error"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    sentAt: timestamp("sent_at", { withTimezone: true }),
  },
  (t) => [
    index("mail_outbox_due_idx").on(t.status, t.nextAttemptAt),
    index("mail_outbox_org_id_idx").on(t.orgId),
  ],
);
