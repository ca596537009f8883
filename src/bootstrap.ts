import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type pg from "pg";
import { newOperatorKey } from "./domain/api-keys/api-keys.service.ts";
import { syncCatalog } from "./domain/catalog/catalog.service.ts";
import type { Catalog } from "./domain/catalog/catalog.types.ts";
import type { Logger } from "./infra/logger.ts";
import { systemClock } from "./lib/clock.ts";
import { migrateDatabase } from "./store/migrate.ts";

/**
 * Migrate, then make sure an operator key exists — both under one advisory lock, so two processes
 * starting together neither race on DDL nor mint two first keys.
 */
export async function prepareDatabase(options: {
  pool: pg.Pool;
  operatorKeyPrefix: string;
  operatorKeyFile: string;
  logger: Logger;
  /** Synced into plan_versions under the same lock: two processes never version one edit twice. */
  catalog: Catalog;
}): Promise<void> {
  await migrateDatabase(options.pool, async (db) => {
    const plans = await db.transaction((stores) =>
      syncCatalog(stores.planVersions, options.catalog, systemClock.now()),
    );
    options.logger.info(
      { preset: options.catalog.preset, plans: plans.map((p) => `${p.key}@${p.version}`) },
      "catalog synced",
    );
    if ((await db.stores.operatorKeys.countActive()) > 0) {
      return;
    }
    const { key, plaintext } = newOperatorKey(options.operatorKeyPrefix, "bootstrap", systemClock);
    await db.transaction(async (stores) => {
      await stores.operatorKeys.insert(key);
      // Written before commit: if the file cannot be written, no key exists that nobody holds.
      await mkdir(dirname(options.operatorKeyFile), { recursive: true });
      await writeFile(options.operatorKeyFile, `${plaintext}\n`, { mode: 0o600 });
      await chmod(options.operatorKeyFile, 0o600);
    });
    options.logger.info(
      { operator_key_file: options.operatorKeyFile, key_id: key.id },
      "generated the first operator key; its plaintext is in the file (mode 0600) and nowhere else",
    );
  });
}
