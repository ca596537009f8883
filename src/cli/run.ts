import type { Config } from "../config.ts";
import { createLogger, type Logger } from "../infra/logger.ts";
import { type ConnectedDatabase, connectDatabase, loadConfigOrExit } from "../main.ts";
import type { Database } from "../store/db.ts";

export type CommandContext = { config: Config; logger: Logger; database: Database };

/** Exit statuses of a process ended by a signal, as a shell reports them (128 + signal number). */
const SIGNAL_EXIT_STATUS = { SIGINT: 130, SIGTERM: 143 } as const;

/** One line for the operator: the driver's own words, without the SQL text and parameters Drizzle adds. */
export function errorMessage(err: unknown): string {
  let current = err;
  while (current instanceof Error && current.cause instanceof Error) {
    current = current.cause;
  }
  // Node reports a refused connection to a name with several addresses as an AggregateError with no message.
  if (current instanceof AggregateError && current.message === "" && current.errors[0] instanceof Error) {
    current = current.errors[0];
  }
  if (current instanceof Error) {
    const code = (current as { code?: unknown }).code;
    return current.message !== "" ? current.message : typeof code === "string" ? code : current.name;
  }
  return String(current);
}

/** Print one `orgplane: …` line to stderr and exit 1. */
export function fail(message: string): never {
  process.stderr.write(`orgplane: ${message}\n`);
  process.exit(1);
}

/**
 * Run one command against the configured database (DATABASE_URL, the running server's embedded cluster, or
 * an embedded cluster started for the command), then close it. Logs go to stderr: stdout is the output.
 */
export async function withDatabase(work: (ctx: CommandContext) => Promise<void>): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel, "stderr");
  let connected: ConnectedDatabase | undefined;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      // An embedded cluster this process started must not outlive it.
      const closed = connected?.close() ?? Promise.resolve();
      closed.finally(() => process.exit(SIGNAL_EXIT_STATUS[signal]));
    });
  }
  try {
    connected = await connectDatabase(config, logger, { shareRunningEmbedded: true });
  } catch (err) {
    fail(`cannot open the database: ${errorMessage(err)}`);
  }
  try {
    await work({ config, logger, database: connected.database });
  } catch (err) {
    await connected.close().catch(() => {});
    fail(errorMessage(err));
  }
  await connected.close();
}
