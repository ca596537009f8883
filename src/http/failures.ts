import { HTTPException } from "hono/http-exception";
import { createBoundedWarning, type Logger } from "../infra/logger.ts";
import { AppError } from "../lib/errors.ts";

/**
 * What a thrown error means for the client: an AppError as it is; Hono's own body errors as ours; an
 * infrastructure failure (database down…) as `classify` says; undefined for a bug (a 500, logged).
 */
export function toAppError(
  err: unknown,
  classify: (err: unknown) => AppError | undefined,
): AppError | undefined {
  if (err instanceof AppError) {
    return err;
  }
  if (err instanceof HTTPException) {
    switch (err.status) {
      case 400:
        return new AppError("malformed_json", "The request body is not valid JSON");
      case 413:
        return new AppError("payload_too_large", "The request body is too large");
      case 415:
        return new AppError(
          "unsupported_media_type",
          "Send the body as JSON with 'Content-Type: application/json'",
        );
      default:
        return undefined;
    }
  }
  return classify(err);
}

/** What to log of an expected infrastructure failure: no stack, no connection string. */
export function errorSummary(err: unknown): { message: string; code?: string } {
  const root = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  if (root instanceof Error) {
    const code = (root as { code?: unknown }).code;
    return typeof code === "string" ? { message: root.message, code } : { message: root.message };
  }
  return { message: String(root) };
}

const unavailableWarnings = new WeakMap<Logger, (fields: Record<string, unknown>) => void>();

/** One bounded "dependency unavailable" warning per logger: a long outage is a line every few seconds. */
function unavailableWarning(logger: Logger): (fields: Record<string, unknown>) => void {
  let warn = unavailableWarnings.get(logger);
  if (warn === undefined) {
    warn = createBoundedWarning(logger, "dependency unavailable");
    unavailableWarnings.set(logger, warn);
  }
  return warn;
}

/**
 * The problem to answer for an error thrown while serving a request, logged as it deserves: a dependency
 * that is down at warn (without its stack), a bug at error (with it) as a 500 that reveals nothing.
 */
export function failureProblem(
  err: unknown,
  deps: { logger: Logger; classifyError: (err: unknown) => AppError | undefined },
  requestId: string,
): AppError {
  const known = toAppError(err, deps.classifyError);
  if (known !== undefined) {
    if (known.code === "service_unavailable") {
      unavailableWarning(deps.logger)({ request_id: requestId, err: errorSummary(err) });
    }
    return known;
  }
  deps.logger.error({ request_id: requestId, err }, "unhandled error");
  return new AppError("internal_error", "An unexpected error occurred; it has been logged");
}
