import PgBoss from "pg-boss";
import type { Logger } from "./logger.ts";

/** pg-boss's cron resolution is a minute; every minute keeps a due transition at most a minute stale in storage. */
const SUBSCRIPTION_SWEEP_CRON = "* * * * *";
const SUBSCRIPTION_SWEEP_QUEUE = "subscriptions-sweep";
/** A sweep that is still running when the process stops gets this long to finish its batch. */
const STOP_TIMEOUT_MS = 10_000;

export type Jobs = { stop(): Promise<void> };

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
  return {
    async stop() {
      await boss.stop({ graceful: true, wait: true, timeout: STOP_TIMEOUT_MS });
    },
  };
}
