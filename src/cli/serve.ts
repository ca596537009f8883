import { Command } from "commander";
import { main } from "../main.ts";

/** `orgplane serve`: the same code path as `npm start`. */
export function serveCommand(): Command {
  return new Command("serve")
    .description("start the HTTP server (the configuration comes from the environment; see the README)")
    .action(() => main());
}
