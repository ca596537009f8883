#!/usr/bin/env -S node --no-memory-reducer
import { Command } from "commander";
import packageJson from "../../package.json" with { type: "json" };
import { adminKeyCommand } from "./admin-key.ts";
import { migrateCommand } from "./migrate.ts";
import { serveCommand } from "./serve.ts";

/** The `orgplane` command line: one file per command. */
export function buildProgram(): Command {
  return new Command("orgplane")
    .description(packageJson.description)
    .version(packageJson.version)
    .addCommand(serveCommand())
    .addCommand(migrateCommand())
    .addCommand(adminKeyCommand());
}

if (import.meta.main) {
  await buildProgram().parseAsync();
}
