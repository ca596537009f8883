import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import type pg from "pg";
import type { Stores, Transactor } from "../domain/stores.ts";
import { createStores } from "./db.ts";
import * as schema from "./schema/index.ts";

export const MIGRATIONS_FOLDER = fileURLToPath(new URL("./migrations", import.meta.url));

/**
 * Arbitrary but fixed: every Orgplane process takes this advisory lock before migrating, so two
 * processes starting together migrate one after the other instead of racing on the same DDL.
 */
const MIGRATION_LOCK_KEY = 7_212_019_431;

/**
 * Apply pending migrations holding the advisory lock, then run `fn` still holding it, on the same
 * connection: start-up work that must happen once across processes (the first operator key) goes there.
 */
export async function migrateDatabase(
  pool: pg.Pool,
  fn: (db: Transactor & { stores: Stores }) => Promise<void> = async () => {},
): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query("select pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      const db = drizzle(client, { schema });
      await migrate(db, { migrationsFolder: MIGRATIONS_FOLDER });
      await fn({
        stores: createStores(db),
        transaction: (work) => db.transaction((tx) => work(createStores(tx))),
      });
    } finally {
      await client.query("select pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
