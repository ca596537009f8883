import { pino } from "pino";

export type Logger = pino.Logger;

/**
 * JSON logs, to stdout unless told otherwise (the CLI logs to stderr: its stdout is the command's output;
 * the tests pass a stream that keeps every line, to prove no key is ever logged).
 * Credentials are redacted wherever they could appear, as a second line of defence.
 */
export function createLogger(
  level: string,
  destination: "stdout" | "stderr" | pino.DestinationStream = "stdout",
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "orgplane" },
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers['x-api-key']",
        "*.authorization",
        "*.password",
        "*.key",
        "*.plaintext",
        "*.connectionString",
      ],
      censor: "[redacted]",
    },
  };
  if (typeof destination !== "string") {
    return pino(options, destination);
  }
  if (destination === "stderr") {
    return pino(options, pino.destination({ dest: 2, sync: true }));
  }
  // The server logs a line per request: written asynchronously, so a request never waits on a write(2) and
  // lines logged while one write is in flight go out together in the next. Whatever is still queued when
  // the process exits (process.exit after a fatal start-up error, a clean stop) is written synchronously.
  const stdout = pino.destination({ dest: 1, sync: false });
  process.once("exit", () => {
    try {
      stdout.flushSync();
    } catch {
      // Destroyed or never opened: nothing can be written any more.
    }
  });
  return pino(options, stdout);
}

/**
 * A warning that may repeat on every request while something is down (a database, Redis): the first is
 * logged, then at most one per `intervalMs` carrying how many were left out since, so an outage costs a
 * line every few seconds instead of a line per request.
 */
export function createBoundedWarning(logger: Logger, message: string, intervalMs = 5_000) {
  let lastAt = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  return (fields: Record<string, unknown>): void => {
    const now = performance.now();
    if (now - lastAt < intervalMs) {
      suppressed += 1;
      return;
    }
    logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
    lastAt = now;
    suppressed = 0;
  };
}
