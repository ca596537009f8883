import { AppError } from "../lib/errors.ts";

type PgErrorLike = { code?: unknown; constraint?: unknown };

/** Drizzle wraps driver errors; walk the cause chain to the pg error. */
function* causes(err: unknown): Generator<PgErrorLike> {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    yield current as PgErrorLike;
    current = (current as { cause?: unknown }).cause;
  }
}

export function isUniqueViolation(err: unknown, constraint: string): boolean {
  for (const e of causes(err)) {
    if (e.code === "23505" && e.constraint === constraint) {
      return true;
    }
  }
  return false;
}

/**
 * SQLSTATE classes and socket errors that mean "the database is not there right now": connection
 * exceptions (08), admin shutdown / cannot connect now (57P0x), insufficient resources (53), plus the
 * driver's own socket and timeout failures.
 */
const UNAVAILABLE_SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
const UNAVAILABLE_MESSAGES = [
  "timeout exceeded when trying to connect",
  "Connection terminated",
  "Client has encountered a connection error",
  "database ping timed out",
];

export function isDatabaseUnavailable(err: unknown): boolean {
  for (const e of causes(err)) {
    const code = typeof e.code === "string" ? e.code : "";
    if (
      UNAVAILABLE_SOCKET_CODES.has(code) ||
      code.startsWith("08") ||
      code.startsWith("57P") ||
      code.startsWith("53")
    ) {
      return true;
    }
    const message = (e as { message?: unknown }).message;
    if (typeof message === "string" && UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) {
      return true;
    }
  }
  return false;
}

/**
 * SQLSTATEs for text PostgreSQL cannot store whatever the code does: a NUL character in text
 * (22021, invalid byte sequence) or in jsonb (22P05, unsupported Unicode escape). Only client input
 * carries one, so it is a bad request, not a bug.
 */
const UNSTORABLE_TEXT_CODES = new Set(["22021", "22P05"]);

export function isUnstorableText(err: unknown): boolean {
  for (const e of causes(err)) {
    if (typeof e.code === "string" && UNSTORABLE_TEXT_CODES.has(e.code)) {
      return true;
    }
  }
  return false;
}

/** Turn a storage failure into the error a client may see; undefined when it is a genuine bug. */
export function classifyStorageError(err: unknown): AppError | undefined {
  if (isUnstorableText(err)) {
    return new AppError("validation_failed", "Text may not contain NUL characters (\\u0000)", {
      errors: [{ path: "", message: "contains a NUL character (\\u0000)" }],
      cause: err,
    });
  }
  if (isDatabaseUnavailable(err)) {
    return new AppError("service_unavailable", "The database is unavailable; retry shortly", {
      retryAfterSeconds: 5,
      cause: err,
    });
  }
  return undefined;
}
