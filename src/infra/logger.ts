import { pino } from "pino";

export type Logger = pino.Logger;

/** JSON logs. Credentials are redacted wherever they could appear, as a second line of defence. */
export function createLogger(level: string): Logger {
  return pino({
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
  });
}
