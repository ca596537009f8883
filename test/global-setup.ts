import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "../src/infra/embedded-postgres.ts";
import { createLogger } from "../src/infra/logger.ts";
import { migrateDatabase } from "../src/store/migrate.ts";
import { freePort, withDatabase } from "./util.ts";

declare module "vitest" {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
    templateDatabase: string;
    runId: string;
  }
}

/**
 * One migrated template database per run; every test file clones it (CREATE DATABASE … TEMPLATE),
 * which takes milliseconds instead of re-running migrations. Without TEST_DATABASE_URL, an embedded
 * PostgreSQL is started for the run, so `npm test` works on a machine with no server installed.
 */
export async function setup(project: TestProject) {
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`;
  let embedded: EmbeddedDatabase | undefined;
  let embeddedDir: string | undefined;
  let adminUrl = process.env.TEST_DATABASE_URL;
  if (adminUrl === undefined || adminUrl === "") {
    process.stderr.write("TEST_DATABASE_URL is not set: starting an embedded PostgreSQL for this run\n");
    embeddedDir = await mkdtemp(join(tmpdir(), "orgplane-test-pg-"));
    // mkdtemp makes it 0700; as root the embedded PostgreSQL runs as `postgres`, which must reach it.
    await chmod(embeddedDir, 0o755);
    embedded = await startEmbeddedPostgres({
      dataDir: embeddedDir,
      port: await freePort(),
      logger: createLogger("warn"),
    });
    adminUrl = embedded.url;
  }
  const template = `orgplane_tpl_${runId}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${template}`);
  const pool = new pg.Pool({ connectionString: withDatabase(adminUrl, template), max: 1 });
  await migrateDatabase(pool);
  await pool.end();

  project.provide("adminDatabaseUrl", adminUrl);
  project.provide("templateDatabase", template);
  project.provide("runId", runId);

  return async () => {
    const { rows } = await admin.query<{ datname: string }>(
      "select datname from pg_database where datname like $1 or datname = $2",
      [`orgplane_t_${runId}_%`, template],
    );
    for (const { datname } of rows) {
      await admin.query(`drop database if exists ${datname} with (force)`);
    }
    await admin.end();
    await embedded?.stop();
    if (embeddedDir !== undefined) {
      await rm(embeddedDir, { recursive: true, force: true });
    }
  };
}
