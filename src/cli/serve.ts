import { Command } from "commander";
import { main } from "../main.ts";

/** `orgplane serve`: the same code path as `npm start`. */
export function serveCommand(): Command {
  return new Command("serve")
    .description("start the HTTP server (the configuration comes from the environment; see the README)")
    .option(
      "--preset <name>",
      "the catalog preset: multimodal-search, llm-router, managed-postgres or rag-search (sets ORGPLANE_PRESET)",
    )
    .action((options: { preset?: string }) => {
      if (options.preset !== undefined) {
        // Handed over through the environment, so config.ts stays the one place that reads and validates it.
        process.env.ORGPLANE_PRESET = options.preset;
      }
      return main();
    });
}
