import { Command } from "commander";
import { migrateDatabase } from "../store/migrate.ts";
import { withDatabase } from "./run.ts";

/** `orgplane migrate`: apply pending migrations under the same advisory lock the server takes at start. */
export function migrateCommand(): Command {
  return new Command("migrate")
    .description("apply pending database migrations and exit (the server also applies them at start)")
    .action(() =>
      withDatabase(async ({ database }) => {
        await migrateDatabase(database.pool);
        process.stdout.write("orgplane: the database schema is up to date\n");
      }),
    );
}
