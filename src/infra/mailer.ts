import nodemailer from "nodemailer";
import type { MailOutboxStore, MailWakeSource } from "../domain/mail/mail.store.ts";
import type { OutboxMessage } from "../domain/mail/mail.types.ts";
import type { Clock } from "../lib/clock.ts";
import { passOnWake } from "../lib/single-flight.ts";
import type { Logger } from "./logger.ts";

/** How one message leaves the process: "sent" over SMTP, or "logged" when no SMTP server is configured. */
export type MailTransport = {
  deliver(message: OutboxMessage): Promise<"sent" | "logged">;
  close(): void;
};

/** SMTP timeouts: together well under the claim lease, so a hung server cannot outlive a claim. */
const SMTP_CONNECT_TIMEOUT_MS = 10_000;
const SMTP_GREETING_TIMEOUT_MS = 10_000;
const SMTP_SOCKET_TIMEOUT_MS = 30_000;

export function createSmtpTransport(options: { url: string; from: string }): MailTransport {
  const transporter = nodemailer.createTransport({
    url: options.url,
    connectionTimeout: SMTP_CONNECT_TIMEOUT_MS,
    greetingTimeout: SMTP_GREETING_TIMEOUT_MS,
    socketTimeout: SMTP_SOCKET_TIMEOUT_MS,
  });
  return {
    async deliver(message) {
      await transporter.sendMail({
        from: options.from,
        to: message.toAddress,
        subject: message.subject,
        text: message.textBody,
        messageId: `<${message.id}@orgplane>`,
      });
      return "sent";
    },
    close: () => transporter.close(),
  };
}

/** Without SMTP_URL: the message stays in the outbox table; the sender logs that it exists (never its body). */
export const logOnlyTransport: MailTransport = {
  deliver: async () => "logged",
  close: () => {},
};

export type MailerPolicy = {
  /** Attempts before a message is marked failed. */
  maxAttempts: number;
  /** Delay after the first failure; doubled after each further one, up to `maxBackoffMs`. */
  firstBackoffMs: number;
  maxBackoffMs: number;
  /** How long a claimed message stays hidden from other senders: covers one batch's SMTP timeouts. */
  leaseMs: number;
  batchSize: number;
  /** Fallback sweep for retries that came due and notifications missed during a reconnect. */
  pollMs: number;
};

/**
 * 8 attempts, 30 s doubling to 32 min: about an hour of retries spans a mail server's restart or a short
 * outage, then the message is marked failed for an operator to look at rather than retried forever.
 */
export const DEFAULT_MAILER_POLICY: MailerPolicy = {
  maxAttempts: 8,
  firstBackoffMs: 30_000,
  maxBackoffMs: 60 * 60 * 1000,
  leaseMs: 2 * 60 * 1000,
  batchSize: 10,
  pollMs: 10_000,
};

/** Delay before the next attempt after `attempts` failed ones. */
export function backoffMs(policy: MailerPolicy, attempts: number): number {
  return Math.min(policy.firstBackoffMs * 2 ** Math.max(0, attempts - 1), policy.maxBackoffMs);
}

export type Mailer = {
  start(): Promise<void>;
  /** Look for due messages now (a commit enqueued one). */
  wake(): void;
  /** Stop claiming; wait for the messages being sent. Call before the pool closes. */
  stop(): Promise<void>;
};

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The sender: claims due outbox rows (FOR UPDATE SKIP LOCKED, so several processes share the work), sends
 * each, marks it sent, or schedules a retry with exponential backoff. Logs id, kind, recipient and subject of
 * every message — never the body, which may carry a single-use token.
 */
export function createMailer(deps: {
  store: MailOutboxStore;
  transport: MailTransport;
  wakeSource: MailWakeSource;
  clock: Clock;
  logger: Logger;
  policy?: Partial<MailerPolicy>;
}): Mailer {
  const policy: MailerPolicy = { ...DEFAULT_MAILER_POLICY, ...deps.policy };
  const { store, transport, clock, logger } = deps;
  let poller: NodeJS.Timeout | undefined;

  async function deliverOne(message: OutboxMessage): Promise<void> {
    const fields = {
      mail_id: message.id,
      kind: message.kind,
      to: message.toAddress,
      subject: message.subject,
      attempt: message.attempts,
    };
    let outcome: "sent" | "logged";
    try {
      outcome = await transport.deliver(message);
    } catch (err) {
      const error = errorMessage(err);
      if (message.attempts >= policy.maxAttempts) {
        await store.markFailed(message.id, error);
        logger.error({ ...fields, err: error }, "mail delivery failed for good");
      } else {
        const next = new Date(clock.now().getTime() + backoffMs(policy, message.attempts));
        await store.markRetry(message.id, next, error);
        logger.warn(
          { ...fields, err: error, next_attempt_at: next.toISOString() },
          "mail delivery failed; will retry",
        );
      }
      return;
    }
    await store.markDelivered(message.id, outcome, clock.now());
    logger.info(
      fields,
      outcome === "sent" ? "mail sent" : "mail not sent (SMTP_URL is not set): kept in the outbox table",
    );
  }

  async function drain(): Promise<void> {
    while (!passes.stopped()) {
      const now = clock.now();
      const batch = await store.claimDue(now, new Date(now.getTime() + policy.leaseMs), policy.batchSize);
      // One batch in parallel: each message has its own SMTP connection and its own outcome.
      await Promise.all(
        batch.map((m) =>
          deliverOne(m).catch((err: unknown) =>
            logger.warn({ mail_id: m.id, err: errorMessage(err) }, "could not record a mail outcome"),
          ),
        ),
      );
      if (batch.length < policy.batchSize) {
        return;
      }
    }
  }

  // A commit during a sweep may not be visible to it: a wake-up then makes it sweep once more.
  const passes = passOnWake(() =>
    drain().catch((err: unknown) => logger.warn({ err: errorMessage(err) }, "mail sweep failed")),
  );
  const wake = passes.wake;

  return {
    async start() {
      poller = setInterval(wake, policy.pollMs);
      poller.unref();
      await deps.wakeSource.start(wake);
      wake();
    },
    wake,
    async stop() {
      clearInterval(poller);
      await deps.wakeSource.stop();
      await passes.stop();
      transport.close();
    },
  };
}
