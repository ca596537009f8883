import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import pg from "pg";
import { expect, inject } from "vitest";
import { createFreshDatabase, reachableTempDir } from "./fresh.ts";
import { killRunning, type Proc, startServer, stop, waitReady } from "./process.ts";
import { freePort } from "./util.ts";

/** Real server processes on one fresh database, as several replicas of one deployment run. */
export type Fleet = {
  databaseUrl: string;
  /** The operator key the first server wrote at start. */
  operatorKey: string;
  /** The servers started so far, in order, and their ports. */
  servers: Proc[];
  ports: number[];
  /** Start one more server on the same database (its own data dir and port); resolves when it is ready. */
  start(env?: Record<string, string>): Promise<{ proc: Proc; port: number }>;
  /**
   * For afterAll: every server still running is stopped with SIGTERM and must exit 0 (killed ones are left
   * as they are), stragglers are killed, the database is dropped and the data directories removed.
   */
  close(): Promise<void>;
};

/**
 * `count` servers on a fresh database, started one after the other (the first migrates and writes the
 * operator key; the next ones find the database migrated). `env` is given to every server, `each(i)` to
 * the i-th only.
 */
export async function startFleet(
  label: string,
  count: number,
  env: Record<string, string> = {},
  each: (index: number) => Record<string, string> = () => ({}),
): Promise<Fleet> {
  const admin = new pg.Client({ connectionString: inject("adminDatabaseUrl") });
  await admin.connect();
  const { name, url } = await createFreshDatabase(admin, label);
  const dirs: string[] = [];
  const servers: Proc[] = [];
  const ports: number[] = [];

  async function start(extra: Record<string, string> = {}): Promise<{ proc: Proc; port: number }> {
    const dir = await reachableTempDir(`${label}-${servers.length}`, dirs);
    const port = await freePort();
    const proc = startServer({
      ...env,
      ...extra,
      DATABASE_URL: url,
      ORGPLANE_DATA_DIR: dir,
      PORT: String(port),
    });
    servers.push(proc);
    ports.push(port);
    await waitReady(proc, port, performance.now());
    return { proc, port };
  }

  for (let i = 0; i < count; i++) {
    await start(each(i));
  }
  const firstDir = dirs[0];
  const operatorKey =
    firstDir === undefined ? "" : (await readFile(join(firstDir, "operator-key"), "utf8")).trim();

  return {
    databaseUrl: url,
    operatorKey,
    servers,
    ports,
    start,
    async close() {
      try {
        for (const server of servers) {
          if (server.child.exitCode === null && server.child.signalCode === null) {
            expect(await stop(server), server.output().slice(-2000)).toEqual({ code: 0, signal: null });
          }
        }
      } finally {
        await killRunning();
        await admin.query(`drop database if exists ${name} with (force)`);
        await admin.end();
        for (const dir of dirs) {
          await rm(dir, { recursive: true, force: true });
        }
      }
    },
  };
}
