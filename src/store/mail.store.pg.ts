import { and, asc, desc, eq, inArray, lte, sql } from "drizzle-orm";
import type pg from "pg";
import type { MailOutboxStore, MailWakeSource } from "../domain/mail/mail.store.ts";
import type { Executor } from "./db.ts";
import { listenOnChannel } from "./pg-listener.ts";
import { mailOutbox } from "./schema/mail-outbox.ts";

/** The NOTIFY channel an enqueue signals on; PostgreSQL delivers it to listeners only when the transaction commits. */
const MAIL_CHANNEL = "orgplane_mail";

/** `last_error` is for operators; a longer SMTP reply adds nothing and must not grow the row without bound. */
const ERROR_MAX_CHARS = 500;

export function createMailOutboxStore(db: Executor): MailOutboxStore {
  return {
    async enqueue(message) {
      await db.insert(mailOutbox).values(message);
      await db.execute(sql`select pg_notify(${MAIL_CHANNEL}, '')`);
    },

    async claimDue(now, leaseUntil, limit) {
      const due = db
        .select({ id: mailOutbox.id })
        .from(mailOutbox)
        .where(and(eq(mailOutbox.status, "pending"), lte(mailOutbox.nextAttemptAt, now)))
        .orderBy(asc(mailOutbox.nextAttemptAt))
        .limit(limit)
        // Rows another sender is claiming right now are skipped, not waited for: each row goes to one sender.
        .for("update", { skipLocked: true });
      return db
        .update(mailOutbox)
        .set({ attempts: sql`${mailOutbox.attempts} + 1`, nextAttemptAt: leaseUntil })
        .where(inArray(mailOutbox.id, due))
        .returning();
    },

    async markDelivered(id, status, at) {
      await db
        .update(mailOutbox)
        .set({ status, sentAt: at, lastError: null })
        .where(and(eq(mailOutbox.id, id), eq(mailOutbox.status, "pending")));
    },

    async markRetry(id, nextAttemptAt, error) {
      await db
        .update(mailOutbox)
        .set({ nextAttemptAt, lastError: error.slice(0, ERROR_MAX_CHARS) })
        .where(and(eq(mailOutbox.id, id), eq(mailOutbox.status, "pending")));
    },

    async markFailed(id, error) {
      await db
        .update(mailOutbox)
        .set({ status: "failed", lastError: error.slice(0, ERROR_MAX_CHARS) })
        .where(and(eq(mailOutbox.id, id), eq(mailOutbox.status, "pending")));
    },

    async listForOrg(orgId, limit) {
      return db
        .select()
        .from(mailOutbox)
        .where(eq(mailOutbox.orgId, orgId))
        .orderBy(desc(mailOutbox.id))
        .limit(limit);
    },
  };
}

/** A listener that lost its connection tries again after this long; the sender's poll covers the gap. */
const RELISTEN_MS = 5000;

/**
 * Wakes the sender when any process commits an enqueue: one pooled connection per process stays in LISTEN.
 * Notifications can be missed while it reconnects, which is why the sender also polls.
 */
export function createMailWakeSource(pool: pg.Pool, onError: (err: Error) => void): MailWakeSource {
  const listener = listenOnChannel(pool, MAIL_CHANNEL, { retryMs: RELISTEN_MS, onError });
  return {
    // Whatever was enqueued while nobody listened is due as soon as the listener is back.
    start: (onWake) => listener.start({ notified: onWake, connected: onWake, disconnected: () => {} }),
    stop: () => listener.stop(),
  };
}
