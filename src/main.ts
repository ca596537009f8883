import { existsSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import { prepareDatabase } from "./bootstrap.ts";
import { type Config, ConfigError, loadConfig } from "./config.ts";
import { createApp } from "./http/app.ts";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./infra/embedded-postgres.ts";
import { createLogger, type Logger } from "./infra/logger.ts";
import { createHttpMetrics } from "./infra/metrics.ts";
import { systemClock } from "./lib/clock.ts";
import { createServices } from "./services.ts";
import { openDatabase } from "./store/db.ts";
import { classifyStorageError } from "./store/pg-errors.ts";

/** Idempotency records expire after 24 h; sweeping hourly keeps the table to about a day of keys. */
const IDEMPOTENCY_SWEEP_MS = 60 * 60 * 1000;

export type RunningServer = { url: string; close(): Promise<void> };

export async function startOrgplane(config: Config, logger: Logger): Promise<RunningServer> {
  let embedded: EmbeddedDatabase | undefined;
  let databaseUrl = config.databaseUrl;
  if (databaseUrl === undefined) {
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
    databaseUrl = embedded.url;
  }
  const database = openDatabase({
    url: databaseUrl,
    poolMax: config.databasePoolMax,
    onPoolError: (err) => logger.warn({ err: { message: err.message } }, "idle database connection lost"),
  });
  const operatorKeyFile = join(config.dataDir, "operator-key");
  await prepareDatabase({
    pool: database.pool,
    operatorKeyPrefix: config.operatorKeyPrefix,
    operatorKeyFile,
    logger,
  });

  const prefixes = { orgKeyPrefix: config.keyPrefix, operatorKeyPrefix: config.operatorKeyPrefix };
  const services = createServices(database, { clock: systemClock, prefixes });
  const app = createApp({
    services,
    logger,
    metrics: createHttpMetrics({ defaultMetrics: true }),
    ping: () => database.ping(1000),
    classifyError: classifyStorageError,
    trustProxy: config.trustProxy,
  });

  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://localhost:${port}`;
  logger.info(
    {
      url,
      docs: `${url}/docs`,
      database: embedded ? "embedded" : "external",
      operator_key_file: existsSync(operatorKeyFile) ? operatorKeyFile : null,
    },
    existsSync(operatorKeyFile)
      ? `Orgplane is listening on ${url}; API docs at ${url}/docs; operator key in ${operatorKeyFile}`
      : `Orgplane is listening on ${url}; API docs at ${url}/docs; create an operator key with 'orgplane admin-key create'`,
  );

  const sweeper = setInterval(() => {
    services.idempotency
      .sweep()
      .then((n) => logger.debug({ deleted: n }, "swept expired idempotency keys"))
      .catch((err: unknown) => logger.warn({ err: String(err) }, "idempotency sweep failed"));
  }, IDEMPOTENCY_SWEEP_MS);
  sweeper.unref();

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
    await database.close();
    await embedded?.stop();
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

/** `npm start`: read the environment, start, stop cleanly on SIGTERM/SIGINT. */
export async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`orgplane: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  let running: RunningServer;
  try {
    running = await startOrgplane(config, logger);
  } catch (err) {
    logger.fatal({ err }, "Orgplane failed to start");
    process.exit(1);
  }
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      logger.info({ signal }, "shutting down");
      running.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    });
  }
}

if (import.meta.main) {
  await main();
}
