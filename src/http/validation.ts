import { AppError, type FieldError } from "../lib/errors.ts";

type Issue = { path: PropertyKey[]; message: string };

function toFieldErrors(target: string, issues: readonly Issue[]): FieldError[] {
  return issues.slice(0, 50).map((issue) => {
    const path = issue.path.map(String).join(".");
    const prefix = target === "json" ? "" : `${target === "param" ? "path" : target}.`;
    return { path: `${prefix}${path}`, message: issue.message };
  });
}

/** A schema's refusal of part of a request (`json`, `param`, `query`…) as a 400 naming every field. */
export function validationFailed(target: string, issues: readonly Issue[]): AppError {
  const errors = toFieldErrors(target, issues);
  const first = errors[0];
  return new AppError(
    "validation_failed",
    first ? `${first.path || "body"}: ${first.message}` : "The request is invalid",
    { errors },
  );
}
