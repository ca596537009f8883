import type { Context } from "hono";
import { AppError, codeToTitle, type ErrorCode, type FieldError } from "../lib/errors.ts";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export type ProblemBody = {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  request_id: string;
  instance: string;
  errors?: FieldError[];
};

export function problemType(code: ErrorCode): string {
  return `urn:orgplane:error:${code}`;
}

/** The RFC 9457 document of an AppError; `path` is the request's path (the problem's `instance`). */
export function problemBody(err: AppError, requestId: string, path: string): ProblemBody {
  const body: ProblemBody = {
    // The standard members below win over any detail of the same name.
    ...err.details,
    type: problemType(err.code),
    title: codeToTitle(err.code),
    status: err.status,
    detail: err.message,
    code: err.code,
    request_id: requestId,
    instance: path.length > 256 ? `${path.slice(0, 256)}…` : path,
  };
  if (err.errors !== undefined) {
    body.errors = err.errors;
  }
  return body;
}

/** The headers every problem response carries. */
export function problemHeaders(err: AppError, requestId: string): Record<string, string> {
  const headers: Record<string, string> = { "Content-Type": PROBLEM_CONTENT_TYPE, "X-Request-Id": requestId };
  if (err.retryAfterSeconds !== undefined) {
    headers["Retry-After"] = String(err.retryAfterSeconds);
  }
  if (err.status === 401) {
    headers["WWW-Authenticate"] = 'Bearer realm="orgplane"';
  }
  return headers;
}

/** Render an AppError as an RFC 9457 problem response. */
export function problemResponse(c: Context, err: AppError): Response {
  const requestId = c.get("requestId") ?? "";
  return new Response(JSON.stringify(problemBody(err, requestId, c.req.path)), {
    status: err.status,
    headers: problemHeaders(err, requestId),
  });
}

export function problem(c: Context, code: ErrorCode, detail: string, errors?: FieldError[]): Response {
  return problemResponse(c, new AppError(code, detail, errors === undefined ? {} : { errors }));
}
