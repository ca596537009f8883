import { and, asc, desc, eq, inArray, lte, sql } from "drizzle-orm";
import type pg from "pg";
import type { MailOutboxStore, MailWakeSource } from "../domain/mail/mail.store.ts";
import type { Executor } from "./db.ts";
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
/** A closing connection reports back within milliseconds; this only bounds a broken one. */
const STOP_WAIT_MS = 2000;

export function createMailWakeSource(pool: pg.Pool, onError: (err: Error) => void): MailWakeSource {
  let client: pg.PoolClient | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  function scheduleRetry(onWake: () => void): void {
    if (stopped) {
      return;
    }
    retryTimer = setTimeout(() => void connect(onWake), RELISTEN_MS);
    retryTimer.unref();
  }

  async function connect(onWake: () => void): Promise<void> {
    let c: pg.PoolClient | undefined;
    try {
      c = await pool.connect();
      const listening = c;
      listening.on("notification", (msg) => {
        if (msg.channel === MAIL_CHANNEL) {
          onWake();
        }
      });
      listening.on("error", (err) => {
        onError(err);
        if (client === listening) {
          client = undefined;
          listening.release(err);
          scheduleRetry(onWake);
        }
      });
      await listening.query(`listen ${MAIL_CHANNEL}`);
      if (stopped) {
        listening.release(true);
        return;
      }
      client = listening;
      // Whatever was enqueued while nobody listened is due now.
      onWake();
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
      c?.release(true);
      scheduleRetry(onWake);
    }
  }

  return {
    start: (onWake) => connect(onWake),
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      const listening = client;
      client = undefined;
      if (listening === undefined) {
        return;
      }
      // Destroyed rather than returned: a pooled connection must not keep listening for the next borrower.
      // Wait until its socket has closed (bounded): the pool no longer counts it, and a database stopped
      // right after shutdown (the embedded cluster) would otherwise cut it mid-goodbye.
      const ended = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STOP_WAIT_MS);
        listening.once("end", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      listening.release(true);
      await ended;
    },
  };
}
