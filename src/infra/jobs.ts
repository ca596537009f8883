import PgBoss from "pg-boss";
import type { AlertsService } from "../domain/alerts/alerts.service.ts";
import type { WebhooksService } from "../domain/webhooks/webhooks.service.ts";
import type { Logger } from "./logger.ts";

/** pg-boss's cron resolution is a minute; every minute keeps a due transition at most a minute stale in storage. */
const SUBSCRIPTION_SWEEP_CRON = "* * * * *";
const SUBSCRIPTION_SWEEP_QUEUE = "subscriptions-sweep";
/** Credit periods and grant expiries: every minute, so a rollover is at most a minute late in storage. */
const CREDITS_SWEEP_QUEUE = "credits-sweep";
/** Usage storage upkeep, hourly: next month's partition long before it is needed, retention, dedup window. */
const USAGE_MAINTENANCE_QUEUE = "usage-maintenance";
const USAGE_MAINTENANCE_CRON = "17 * * * *";
/** `api_key.expiring`: keys expiring within 7 days are announced by an hourly sweep (apiKeys.sweepExpiring). */
const API_KEYS_EXPIRING_QUEUE = "api-keys-expiring-sweep";
const API_KEYS_EXPIRING_CRON = "41 * * * *";
/** A sweep that is still running when the process stops gets this long to finish its batch. */
const STOP_TIMEOUT_MS = 10_000;

/**
 * Alert delivery: one job per alert, woken when the alert is recorded. Retries: 8 more attempts, 30 s doubling
 * (pg-boss retryBackoff), about two hours in all. The alert row (sent_at null) is the durable record: the
 * sweep hands alerts still unsent after a minute to the job again (a process that died between recording
 * and sending, an alert recorded inside another service's transaction), and the job does nothing for one
 * already sent.
 */
const ALERT_DELIVERY_QUEUE = "alerts-deliver";
const ALERT_SWEEP_QUEUE = "alerts-sweep";
const ALERT_SWEEP_CRON = "* * * * *";
const ALERT_RETRY = { retryLimit: 8, retryDelay: 30, retryBackoff: true } as const;
const ALERT_JOB_SINGLETON_SECONDS = 3600;
/** `trial_ending` alerts: every minute, next to the subscription sweep (alerts.sweepTrialsEnding). */
const TRIAL_ENDING_SWEEP_QUEUE = "trials-ending-sweep";
const TRIAL_ENDING_SWEEP_CRON = "* * * * *";
/** Workers poll every second: an alert's email is in the outbox about a second after it fires. */
const ALERT_POLL_SECONDS = 1;

/**
 * Webhook delivery (docs/adr/0005-webhook-delivery.md). The deliveries table is the queue; a job here is a
 * wake-up of the engine, which claims whatever is due. Commits wake it at once over LISTEN/NOTIFY (main.ts);
 * these jobs cover the rest: a retry due within the next minute (a job starting at that time, taken by any
 * process), and the sweep every minute (a notification missed, a process killed between a commit and its
 * attempt, the longer retries).
 */
const WEBHOOK_DELIVERY_QUEUE = "webhooks-deliver";
const WEBHOOK_SWEEP_QUEUE = "webhooks-sweep";
const WEBHOOK_SWEEP_CRON = "* * * * *";
/** A wake job starts at most this late after its time: the 5 s retry happens 5–6 s after the failure. */
const WEBHOOK_POLL_SECONDS = 1;

export type Jobs = {
  stop(): Promise<void>;
  /** Queue the delivery of one alert (what `AlertsService.fire` calls once pg-boss runs). */
  sendAlert(alertId: string): Promise<void>;
};

/** Queue creations racing in several processes on a fresh database can deadlock; each retries. */
const QUEUE_CREATE_ATTEMPTS = 5;

/**
 * Create the queue unless it exists. Processes starting together on a fresh database race here and
 * PostgreSQL aborts one as a deadlock: the loser finds the winner's queue on its next look.
 */
async function ensureQueue(boss: PgBoss, name: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if ((await boss.getQueue(name)) !== null) {
      return;
    }
    try {
      await boss.createQueue(name);
      return;
    } catch (err) {
      if (attempt >= QUEUE_CREATE_ATTEMPTS) {
        throw err;
      }
    }
  }
}

/**
 * Background jobs in PostgreSQL (pg-boss, its own `pgboss` schema). The subscription sweep runs once a
 * minute on whichever process takes the job; reads apply due transitions too, so a missed run shows nothing stale.
 */
export async function startJobs(options: {
  databaseUrl: string;
  logger: Logger;
  sweepSubscriptions: () => Promise<number>;
  /** Rolls over credit periods and expires grants (reads and debits do it too, for their org). */
  sweepCredits?: () => Promise<number>;
  /** Emits `api_key.expiring` once per key expiring within 7 days (hourly). */
  sweepExpiringKeys?: () => Promise<number>;
  /** Usage partitions ahead, raw months past retention dropped, old dedup records pruned (hourly). */
  maintainUsage?: () => Promise<{ partitions: string[]; dedup: number }>;
  /** Delivers alerts by email; its dispatcher is set to this pg-boss once started and cleared at stop. */
  alerts?: Pick<AlertsService, "deliver" | "undelivered" | "setDispatcher" | "sweepTrialsEnding">;
  /** The webhook delivery engine: woken by the sweep and by timed jobs; its scheduler is set to this pg-boss. */
  webhooks?: Pick<WebhooksService, "wake" | "setScheduler">;
}): Promise<Jobs> {
  const { logger } = options;
  // Two connections: one polls, one runs the sweep's bookkeeping; the sweep itself uses the app's pool.
  const boss = new PgBoss({
    connectionString: options.databaseUrl,
    max: 2,
    application_name: "orgplane-jobs",
  });
  boss.on("error", (err: Error) => logger.warn({ err: { message: err.message } }, "background jobs error"));
  await boss.start();
  await ensureQueue(boss, SUBSCRIPTION_SWEEP_QUEUE);
  await boss.schedule(SUBSCRIPTION_SWEEP_QUEUE, SUBSCRIPTION_SWEEP_CRON);
  await boss.work(SUBSCRIPTION_SWEEP_QUEUE, async () => {
    const changed = await options.sweepSubscriptions();
    logger.debug({ changed }, "swept due subscriptions");
  });
  const { sweepExpiringKeys } = options;
  if (sweepExpiringKeys !== undefined) {
    await ensureQueue(boss, API_KEYS_EXPIRING_QUEUE);
    await boss.schedule(API_KEYS_EXPIRING_QUEUE, API_KEYS_EXPIRING_CRON);
    await boss.work(API_KEYS_EXPIRING_QUEUE, async () => {
      const announced = await sweepExpiringKeys();
      logger.debug({ announced }, "swept API keys expiring soon");
    });
  }
  const { sweepCredits } = options;
  if (sweepCredits !== undefined) {
    await ensureQueue(boss, CREDITS_SWEEP_QUEUE);
    await boss.schedule(CREDITS_SWEEP_QUEUE, SUBSCRIPTION_SWEEP_CRON);
    await boss.work(CREDITS_SWEEP_QUEUE, async () => {
      const settled = await sweepCredits();
      logger.debug({ settled }, "swept due credit periods and expiries");
    });
  }
  const { maintainUsage } = options;
  if (maintainUsage !== undefined) {
    await ensureQueue(boss, USAGE_MAINTENANCE_QUEUE);
    await boss.schedule(USAGE_MAINTENANCE_QUEUE, USAGE_MAINTENANCE_CRON);
    await boss.work(USAGE_MAINTENANCE_QUEUE, async () => {
      const { partitions, dedup } = await maintainUsage();
      logger.debug({ dropped_partitions: partitions, pruned_dedup: dedup }, "maintained usage storage");
    });
  }
  const sendAlert = async (alertId: string): Promise<void> => {
    // One job per alert per hour: the sweep does not pile up copies of a job still retrying with backoff.
    await boss.send(
      ALERT_DELIVERY_QUEUE,
      { alert_id: alertId },
      {
        ...ALERT_RETRY,
        singletonKey: alertId,
        singletonSeconds: ALERT_JOB_SINGLETON_SECONDS,
      },
    );
  };
  const { alerts } = options;
  if (alerts !== undefined) {
    await ensureQueue(boss, ALERT_DELIVERY_QUEUE);
    await ensureQueue(boss, ALERT_SWEEP_QUEUE);
    await boss.work<{ alert_id: string }>(
      ALERT_DELIVERY_QUEUE,
      { pollingIntervalSeconds: ALERT_POLL_SECONDS },
      async ([job]) => {
        if (job === undefined) {
          return;
        }
        // A failure (database down) throws: pg-boss retries the job with backoff.
        const outcome = await alerts.deliver(job.data.alert_id);
        logger.debug({ alert_id: job.data.alert_id, outcome }, "alert delivered to the mail outbox");
      },
    );
    await boss.schedule(ALERT_SWEEP_QUEUE, ALERT_SWEEP_CRON);
    await boss.work(ALERT_SWEEP_QUEUE, async () => {
      const ids = await alerts.undelivered();
      for (const id of ids) {
        await sendAlert(id);
      }
      logger.debug({ requeued: ids.length }, "swept undelivered alerts");
    });
    alerts.setDispatcher({
      send: sendAlert,
      onError: (err, alertId) =>
        logger.warn(
          { alert_id: alertId, err: { message: err instanceof Error ? err.message : String(err) } },
          "alert delivery not queued; the sweep retries it",
        ),
    });
    // `trial_ending`, after the dispatcher is set so its emails are queued at once. Any number of
    // processes and runs record it once (the alerts table's unique key).
    await ensureQueue(boss, TRIAL_ENDING_SWEEP_QUEUE);
    await boss.schedule(TRIAL_ENDING_SWEEP_QUEUE, TRIAL_ENDING_SWEEP_CRON);
    await boss.work(TRIAL_ENDING_SWEEP_QUEUE, async () => {
      const recorded = await alerts.sweepTrialsEnding();
      logger.debug({ recorded }, "swept trials ending soon");
    });
  }
  const { webhooks } = options;
  if (webhooks !== undefined) {
    await ensureQueue(boss, WEBHOOK_DELIVERY_QUEUE);
    await ensureQueue(boss, WEBHOOK_SWEEP_QUEUE);
    await boss.work(WEBHOOK_DELIVERY_QUEUE, { pollingIntervalSeconds: WEBHOOK_POLL_SECONDS }, async () => {
      webhooks.wake();
    });
    await boss.schedule(WEBHOOK_SWEEP_QUEUE, WEBHOOK_SWEEP_CRON);
    await boss.work(WEBHOOK_SWEEP_QUEUE, async () => {
      webhooks.wake();
    });
    // One timed job per second of due time, from this process: a burst of failures at once is one wake-up.
    const scheduled = new Set<number>();
    webhooks.setScheduler({
      wakeAt(at) {
        const second = Math.ceil(at.getTime() / 1000);
        const now = Date.now() / 1000;
        for (const s of scheduled) {
          if (s < now) {
            scheduled.delete(s);
          }
        }
        if (scheduled.has(second)) {
          return;
        }
        scheduled.add(second);
        boss
          .send(WEBHOOK_DELIVERY_QUEUE, {}, { startAfter: new Date(second * 1000) })
          .catch((err: unknown) => {
            scheduled.delete(second);
            logger.warn(
              { err: { message: err instanceof Error ? err.message : String(err) } },
              "webhook wake-up not scheduled; the minute sweep covers it",
            );
          });
      },
    });
    // The start-up pass, now that timed wake-ups can be scheduled: what a previous process left due is
    // attempted at once, and a claim it held when it died is woken for when its lease ends.
    webhooks.wake();
  }
  return {
    async stop() {
      webhooks?.setScheduler(undefined);
      alerts?.setDispatcher(undefined);
      await boss.stop({ graceful: true, wait: true, timeout: STOP_TIMEOUT_MS });
    },
    sendAlert,
  };
}
