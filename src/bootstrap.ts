import { chmod, mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type pg from "pg";
import { newOperatorKey } from "./domain/api-keys/api-keys.service.ts";
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
}): Promise<void> {
  await migrateDatabase(options.pool, async (db) => {
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
