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
  return destination === "stderr" ? pino(options, pino.destination({ dest: 2, sync: true })) : pino(options);
}
