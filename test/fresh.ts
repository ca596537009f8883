import { randomBytes } from "node:crypto";
import { chmod, mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { withDatabase } from "./util.ts";

/**
 * A temporary directory for a server's data, recorded in `track` for the caller's cleanup. mkdtemp makes
 * it 0700; as root, the embedded PostgreSQL runs as `postgres`, which must reach it.
 */
export async function reachableTempDir(label: string, track: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `orgplane-${label}-`));
  track.push(dir);
  await chmod(dir, 0o755);
  return dir;
}

/**
 * A fresh, empty database (no migrations) for real server processes. Named under the run's prefix, so the
 * global teardown drops it even if the file's own cleanup never runs.
 */
export async function createFreshDatabase(
  admin: { query(sql: string): Promise<unknown> },
  label: string,
): Promise<{ name: string; url: string }> {
  const name = `orgplane_t_${inject("runId")}_${label}_${randomBytes(4).toString("hex")}`;
  await admin.query(`create database ${name}`);
  return { name, url: withDatabase(inject("adminDatabaseUrl"), name) };
}
