import { existsSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import packageJson from "../package.json" with { type: "json" };
import { prepareDatabase } from "./bootstrap.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import type { Catalog } from "./domain/catalog/catalog.types.ts";
import type { SecretSealer } from "./domain/integrations/integrations.types.ts";
import { checkSecretKeys, SecretKeyMismatchError } from "./domain/integrations/secret-key-check.ts";
import { fanOutTelemetry } from "./domain/observability/telemetry.ts";
import { type AppDeps, createApp, createRequestListener } from "./http/app.ts";
import { CatalogError, loadConfiguredCatalog } from "./infra/catalog-file.ts";
import {
  type EmbeddedDatabase,
  findRunningEmbeddedPostgres,
  startEmbeddedPostgres,
} from "./infra/embedded-postgres.ts";
import { startJobs } from "./infra/jobs.ts";
import { createBoundedWarning, createLogger, type Logger } from "./infra/logger.ts";
import { createLokiExporter } from "./infra/loki-export/loki-exporter.ts";
import { createMailer, createSmtpTransport, logOnlyTransport } from "./infra/mailer.ts";
import { createHttpMetrics, createWebhookAttemptCounter } from "./infra/metrics.ts";
import { createMetricsExporter } from "./infra/metrics-export/exporter.ts";
import { createOidcVerifier } from "./infra/oidc.ts";
import { createThreadedOutboundClient } from "./infra/outbound-http.ts";
import { createRateLimiter, rateLimiterStatus } from "./infra/rate-limiter.ts";
import { createSecretBox, loadOrCreateSecretKeyFile, SecretKeyError } from "./infra/secret-box.ts";
import { systemClock } from "./lib/clock.ts";
import { missingRuntimeFlags } from "./runtime-flags.ts";
import { createServices } from "./services.ts";
import { type Database, openDatabase } from "./store/db.ts";
import { createLokiAuditSource } from "./store/loki-export.store.pg.ts";
import { createMailWakeSource } from "./store/mail.store.pg.ts";
import { createExportLease } from "./store/metrics-export.store.pg.ts";
import { createOrgChangeListener } from "./store/org-changes.pg.ts";
import { classifyStorageError } from "./store/pg-errors.ts";
import { createWebhookWakeSource } from "./store/webhooks.store.pg.ts";

/** Idempotency records expire after 24 h; sweeping hourly keeps the table to about a day of keys. */
const IDEMPOTENCY_SWEEP_MS = 60 * 60 * 1000;
/**
 * The webhook engine's connections: the listener, one claiming and one recording at a time, one for a
 * redelivery or test attempt from the API.
 */
const WEBHOOK_POOL_MAX = 4;
/** last_used_at is promised within a minute; flushing every 30 s keeps it there with room for one failure. */
const KEY_USAGE_FLUSH_MS = 30_000;

export type RunningServer = { url: string; close(): Promise<void> };

export type ConnectedDatabase = {
  database: Database;
  embedded: boolean;
  /** The connection string in use (the embedded cluster's when DATABASE_URL is unset): background jobs connect with it. */
  url: string;
  close(): Promise<void>;
};

/**
 * The database the configuration names: DATABASE_URL, else the embedded cluster under the data directory.
 * One place decides, for the server and every CLI command. `shareRunningEmbedded`: a CLI command uses the
 * embedded cluster a running server already has up, instead of failing to start a second one on its data.
 */
export async function connectDatabase(
  config: Config,
  logger: Logger,
  options: { shareRunningEmbedded: boolean } = { shareRunningEmbedded: false },
): Promise<ConnectedDatabase> {
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (databaseUrl === undefined && options.shareRunningEmbedded) {
    databaseUrl = await findRunningEmbeddedPostgres(config.dataDir);
    if (databaseUrl !== undefined) {
      logger.info(
        { dataDir: config.dataDir },
        "using the embedded PostgreSQL of the running Orgplane server",
      );
    }
  }
  if (databaseUrl === undefined) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
    databaseUrl = embedded.url;
  }
  const database = openDatabase({
    url: databaseUrl,
    poolMax: config.databasePoolMax,
    onPoolError: (err) => logger.warn({ err: { message: err.message } }, "idle database connection lost"),
  });
  return {
    database,
    embedded: config.databaseUrl === undefined,
    url: databaseUrl,
    async close() {
      await database.close();
      await embedded?.stop();
    },
  };
}

/** Where the first operator key's plaintext is written. */
export function operatorKeyFile(config: Config): string {
  return join(config.dataDir, "operator-key");
}

/** Where the generated secret key is kept when ORGPLANE_SECRET_KEY is unset. */
export function secretKeyFile(config: Config): string {
  return join(config.dataDir, "secret-key");
}

/**
 * The keys sealing stored secrets: ORGPLANE_SECRET_KEY, else the key file under the data directory, generated
 * (mode 0600) on first start. Then checked against what the database holds (`checkSecretKeys`): a key that
 * does not open it stops start-up with one line, before anything is served or sealed.
 */
async function openSecretSealer(
  connected: ConnectedDatabase,
  config: Config,
  logger: Logger,
): Promise<SecretSealer> {
  let sealer: SecretSealer;
  const file = secretKeyFile(config);
  if (config.secretKeys !== undefined) {
    sealer = createSecretBox(config.secretKeys);
  } else {
    const loaded = await loadOrCreateSecretKeyFile(file);
    if (loaded.generated) {
      logger.info(
        { secret_key_file: file },
        "generated the key that seals stored integration tokens (mode 0600); several processes on one database need ORGPLANE_SECRET_KEY set, the same on each",
      );
    }
    sealer = createSecretBox(loaded.keys);
  }
  try {
    const { resealed } = await checkSecretKeys(connected.database.stores.integrations, sealer, systemClock);
    if (resealed > 0) {
      logger.info(
        { resealed, key_id: sealer.currentKeyId },
        "re-sealed integration tokens under the current secret key",
      );
    }
  } catch (err) {
    if (err instanceof SecretKeyMismatchError && config.secretKeys === undefined) {
      throw new SecretKeyMismatchError(
        `${err.message} (ORGPLANE_SECRET_KEY is unset: the key came from ${file})`,
      );
    }
    throw err;
  }
  return sealer;
}

export async function startOrgplane(
  config: Config,
  logger: Logger,
  catalog: Catalog,
): Promise<RunningServer> {
  const connected = await connectDatabase(config, logger);
  try {
    return await serveOn(connected, config, logger, catalog);
  } catch (err) {
    // Nothing is left running when start-up fails half-way (port taken, migration error…).
    await connected.close().catch(() => {});
    throw err;
  }
}

async function serveOn(
  connected: ConnectedDatabase,
  config: Config,
  logger: Logger,
  catalog: Catalog,
): Promise<RunningServer> {
  const { database } = connected;
  const keyFile = operatorKeyFile(config);
  await prepareDatabase({
    pool: database.pool,
    operatorKeyPrefix: config.operatorKeyPrefix,
    operatorKeyFile: keyFile,
    logger,
    catalog,
  });
  const sealer = await openSecretSealer(connected, config, logger);

  const prefixes = { orgKeyPrefix: config.keyPrefix, operatorKeyPrefix: config.operatorKeyPrefix };
  // Redis when REDIS_URL is set (one limit shared by every process), else this process's memory.
  // While Redis is down every decision fails: a line every few seconds, with the count left out.
  const limiterWarning = createBoundedWarning(logger, "rate limiter store error");
  const rateLimiter = createRateLimiter(config, systemClock, {
    onError: (err) => limiterWarning({ err: { message: err.message } }),
  });
  const metrics = createHttpMetrics({ defaultMetrics: true });
  // The webhook engine's own few connections (its listener, claims and outcome batches): API requests
  // waiting for the main pool under load must not hold back deliveries.
  const webhookDatabase = openDatabase({
    url: connected.url,
    poolMax: WEBHOOK_POOL_MAX,
    onPoolError: (err) => logger.warn({ err: { message: err.message } }, "idle database connection lost"),
  });
  const services = createServices(database, {
    clock: systemClock,
    prefixes,
    identity: config.oidc === undefined ? undefined : createOidcVerifier(config.oidc),
    publicUrl: config.publicUrl,
    catalog,
    stripe: config.stripe,
    rateLimiter,
    usage: config.usage,
    webhooks: {
      allowPrivate: config.webhooks.allowPrivate,
      engineDatabase: webhookDatabase,
      onOutcomes: createWebhookAttemptCounter(metrics.registry),
    },
    integrations: { sealer, allowPrivate: config.integrations.allowPrivate },
    onBackgroundError: (err) =>
      logger.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        "background work after a request failed (an alert check, a webhook delivery record)",
      ),
    // Authorize caches keys; every process drops an organization's entries when any process changes it.
    orgChanges: createOrgChangeListener(database.pool, (err) =>
      logger.warn({ err: { message: err.message } }, "organization change listener connection lost"),
    ),
  });
  // Raw usage events go to monthly partitions: the late window's months through next month exist before
  // the first batch (a batch meeting a missing month creates it too).
  await services.usage.maintainPartitions();
  const appDeps: AppDeps = {
    services,
    logger,
    metrics,
    ping: () => database.ping(1000),
    rateLimiterStatus: rateLimiterStatus(config, rateLimiter),
    classifyError: classifyStorageError,
    trustProxy: config.trustProxy,
  };
  const server = createServer(createRequestListener(createApp(appDeps), appDeps));
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
    server.listen(config.port, config.host);
  });
  // After listening succeeded, so a failed start has no listener connection to close; until it listens,
  // authorize reads every key.
  await services.authorize.start();

  // Each organization's metrics and logs pushed to its own Prometheus and Loki (docs/integrations.md):
  // counters and denials from the request paths of this process, figures and the audit trail read by one
  // process at a time (advisory locks). One SSRF-guarded client (INTEGRATIONS_ALLOW_PRIVATE) for both, on a
  // worker thread: the pushes' HTTP work stays off the thread that answers the API.
  const integrationsClient = createThreadedOutboundClient({ allowPrivate: config.integrations.allowPrivate });
  const userAgent = `Orgplane-Export/${packageJson.version}`;
  const metricsExporter = createMetricsExporter({
    metrics: services.orgMetrics,
    integrations: services.integrations,
    client: integrationsClient,
    lease: createExportLease(database.pool, (err) =>
      logger.warn({ err: { message: err.message } }, "metrics export lease connection lost"),
    ),
    clock: systemClock,
    logger,
    intervalSeconds: config.integrations.metricsPushIntervalSeconds,
    userAgent,
  });
  const lokiExporter = createLokiExporter({
    integrations: services.integrations,
    client: integrationsClient,
    audit: createLokiAuditSource(database.pool),
    clock: systemClock,
    logger,
    settings: {
      allowedSampleRate: config.integrations.lokiAllowedSampleRate,
      bufferLines: config.integrations.lokiBufferLines,
    },
    userAgent,
  });
  services.integrations.setProbes({ prometheus: metricsExporter.probe, loki: lokiExporter.probe });
  services.telemetry.bind(fanOutTelemetry([metricsExporter.telemetry, lokiExporter.telemetry]));
  await metricsExporter.start();
  await lokiExporter.start();
  const stopExport = async () => {
    // Before the pool closes: the exporters' locks and cursors live on pool connections.
    await Promise.all([metricsExporter.stop(), lokiExporter.stop()]);
    integrationsClient.close();
  };

  const port = (server.address() as AddressInfo).port;
  const url = `http://localhost:${port}`;
  logger.info(
    {
      url,
      docs: `${url}/docs`,
      database: connected.embedded ? "embedded" : "external",
      operator_key_file: existsSync(keyFile) ? keyFile : null,
    },
    existsSync(keyFile)
      ? `Orgplane is listening on ${url}; API docs at ${url}/docs; operator key in ${keyFile}`
      : `Orgplane is listening on ${url}; API docs at ${url}/docs; create an operator key with 'orgplane admin-key create'`,
  );

  const sweeper = setInterval(() => {
    services.idempotency
      .sweep()
      .then((n) => logger.debug({ deleted: n }, "swept expired idempotency keys"))
      .catch((err: unknown) => logger.warn({ err: String(err) }, "idempotency sweep failed"));
  }, IDEMPOTENCY_SWEEP_MS);
  sweeper.unref();

  const flushKeyUsage = () =>
    services.apiKeys
      .flushLastUsed()
      .then((n) => logger.trace({ keys: n }, "flushed API key last use"))
      .catch((err: unknown) => logger.warn({ err: String(err) }, "API key last-use flush failed"));
  const usageFlusher = setInterval(flushKeyUsage, KEY_USAGE_FLUSH_MS);
  usageFlusher.unref();

  // Sends what the outbox holds: over SMTP when configured, else marks it logged (the body stays in the table).
  const mailer = createMailer({
    store: database.stores.mailOutbox,
    transport:
      config.smtpUrl === undefined
        ? logOnlyTransport
        : createSmtpTransport({ url: config.smtpUrl, from: config.mailFrom }),
    wakeSource: createMailWakeSource(database.pool, (err) =>
      logger.warn({ err: { message: err.message } }, "mail listener connection lost"),
    ),
    clock: systemClock,
    logger,
  });
  await mailer.start();

  // Webhook deliveries: every commit that writes an event wakes the engine of every process (LISTEN); the
  // first pass at start picks up whatever a previous process left due.
  const webhookWake = createWebhookWakeSource(webhookDatabase.pool, (err) =>
    logger.warn({ err: { message: err.message } }, "webhook listener connection lost"),
  );
  await webhookWake.start(() => services.webhooks.wake());

  // Trial ends, renewals and cancellations are applied by a sweep every minute (and on every read).
  const jobs = await startJobs({
    databaseUrl: connected.url,
    logger,
    sweepSubscriptions: () => services.subscriptions.sweep(),
    sweepCredits: () => services.credits.sweep(),
    sweepExpiringKeys: () => services.apiKeys.sweepExpiring(),
    maintainUsage: async () => {
      await services.usage.maintainPartitions();
      return services.usage.prune();
    },
    alerts: services.alerts,
    webhooks: services.webhooks,
  }).catch(async (err: unknown) => {
    await stopExport();
    await webhookWake.stop();
    await services.webhooks.stop();
    await webhookDatabase.close();
    await mailer.stop();
    await services.authorize.stop();
    await rateLimiter.close();
    server.close();
    throw err;
  });

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    clearInterval(sweeper);
    // In-flight requests finish; idle keep-alive sockets close now; stragglers are cut at the timeout.
    const drained = new Promise<void>((resolve) => server.close(() => resolve()));
    if ("closeIdleConnections" in server) {
      server.closeIdleConnections();
    }
    const timer = setTimeout(() => {
      logger.warn("shutdown timeout reached; closing remaining connections");
      if ("closeAllConnections" in server) {
        server.closeAllConnections();
      }
    }, config.shutdownTimeoutMs);
    await drained;
    clearTimeout(timer);
    // The key uses recorded since the last flush are written while the pool is still open.
    clearInterval(usageFlusher);
    await flushKeyUsage();
    // What the exporters hold is pushed (bounded) and their audit cursors saved while the pool exists.
    await stopExport();
    // Webhook attempts in flight finish and are recorded while the pool still exists.
    await webhookWake.stop();
    await services.webhooks.stop();
    await webhookDatabase.close();
    // Messages being sent finish and are marked while the pool still exists.
    await mailer.stop();
    // A sweep in progress finishes its batch while the pool still exists.
    await jobs.stop();
    // The listener's connection is closed (and awaited) before the pool and the database.
    await services.authorize.stop();
    await rateLimiter.close();
    await connected.close();
    logger.info("Orgplane stopped");
  }
  return {
    url,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}

/** The configuration, or one line naming the bad variable and exit status 1: every entry point starts here. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`orgplane: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** The catalog (orgplane.yaml or a preset), or one line naming the file, line and problem, and exit status 1. */
export async function loadCatalogOrExit(config: Config): Promise<Catalog> {
  try {
    return await loadConfiguredCatalog(config.catalog);
  } catch (err) {
    if (err instanceof CatalogError) {
      process.stderr.write(`orgplane: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

/** `npm start` and `orgplane serve`: read the environment, start, stop cleanly on SIGTERM/SIGINT. */
export async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const catalog = await loadCatalogOrExit(config);
  const logger = createLogger(config.logLevel);
  const missing = missingRuntimeFlags(process.execArgv);
  if (missing.length > 0) {
    // Started some other way than the npm scripts or the orgplane bin (a container's own `node src/main.ts`).
    logger.warn(
      { missing_node_flags: missing },
      `started without ${missing.join(" ")}: V8's memory reducer will stop every request for a compacting full GC whenever 100 s pass without one (docs/adr/0008-no-memory-reducer.md)`,
    );
  }
  let running: RunningServer | undefined;
  let stopRequested = false;
  const stop = () => {
    running?.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  // Registered before start-up, so a signal during it still stops the embedded PostgreSQL; `once`: a second
  // signal gets the default action, the way out of a shutdown that hangs.
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      logger.info({ signal }, "shutting down");
      stopRequested = true;
      stop();
    });
  }
  try {
    running = await startOrgplane(config, logger, catalog);
  } catch (err) {
    // A key that does not match the database, or a key file that does not parse: one line, like a bad setting.
    if (err instanceof SecretKeyMismatchError || err instanceof SecretKeyError) {
      process.stderr.write(`orgplane: ${err.message}\n`);
      process.exit(1);
    }
    logger.fatal({ err }, "Orgplane failed to start");
    process.exit(1);
  }
  if (stopRequested) {
    stop();
  }
}

if (import.meta.main) {
  await main();
}
