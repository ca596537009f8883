import { Command, InvalidArgumentError } from "commander";
import { newOperatorKey } from "../domain/api-keys/api-keys.service.ts";
import type { OperatorKey } from "../domain/api-keys/api-keys.types.ts";
import { systemClock } from "../lib/clock.ts";
import { isId } from "../lib/ids.ts";
import { operatorKeyFile } from "../main.ts";
import { migrateDatabase } from "../store/migrate.ts";
import { withDatabase } from "./run.ts";

/** Same bound as an org key's name in the API. */
const MAX_NAME_LENGTH = 64;

function parseName(value: string): string {
  const name = value.trim();
  if (name.length < 1 || name.length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(`must be 1–${MAX_NAME_LENGTH} characters`);
  }
  return name;
}

function toJson(key: OperatorKey) {
  return {
    id: key.id,
    name: key.name,
    key_prefix: key.keyPrefix,
    last_four: key.lastFour,
    created_at: key.createdAt.toISOString(),
    revoked_at: key.revokedAt?.toISOString() ?? null,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** `orgplane admin-key create|list|revoke`: operator keys, which can do everything. */
export function adminKeyCommand(): Command {
  const command = new Command("admin-key").description(
    "manage operator keys (full access to every organization)",
  );

  command
    .command("create")
    .description("create an operator key and print it once to stdout")
    .option("--name <name>", "a label to recognise the key by", parseName, "cli")
    .action((options: { name: string }) =>
      withDatabase(async ({ config, database }) => {
        // The server migrates at start; a key made before its first start needs the schema too.
        await migrateDatabase(database.pool);
        const { key, plaintext } = newOperatorKey(config.operatorKeyPrefix, options.name, systemClock);
        await database.stores.operatorKeys.insert(key);
        process.stdout.write(`${plaintext}\n`);
        process.stderr.write(`orgplane: created operator key ${key.id}; it is shown once, store it now\n`);
      }),
    );

  command
    .command("list")
    .description("list operator keys: id, name, prefix and last four, never the key")
    .option("--json", "print JSON instead of a table")
    .action((options: { json?: true }) =>
      withDatabase(async ({ database }) => {
        const keys = await database.stores.operatorKeys.list();
        if (options.json) {
          process.stdout.write(`${JSON.stringify(keys.map(toJson), null, 2)}\n`);
          return;
        }
        const rows = keys.map((k) => [
          k.id,
          k.name,
          `${k.keyPrefix}…${k.lastFour}`,
          k.createdAt.toISOString(),
          k.revokedAt === null ? "active" : `revoked ${k.revokedAt.toISOString()}`,
        ]);
        process.stdout.write(`${table([["ID", "NAME", "KEY", "CREATED", "STATUS"], ...rows])}\n`);
      }),
    );

  command
    .command("revoke")
    .description("revoke an operator key; running servers refuse it within a second")
    .argument("<id>", "the key's id (opk_…)")
    .action((id: string) =>
      withDatabase(async ({ config, database }) => {
        const stores = database.stores;
        const found = isId("opk", id) ? await stores.operatorKeys.revoke(id, systemClock.now()) : undefined;
        if (found === undefined) {
          // Thrown, not exited: withDatabase closes the database (and any embedded cluster) first.
          throw new Error(`operator key '${id.slice(0, 64)}' not found`);
        }
        process.stdout.write(`orgplane: operator key ${found.id} is revoked\n`);
        if ((await stores.operatorKeys.countActive()) === 0) {
          process.stderr.write(
            `orgplane: no active operator key remains; the next server start writes a new one to ${operatorKeyFile(config)}\n`,
          );
        }
      }),
    );

  return command;
}
