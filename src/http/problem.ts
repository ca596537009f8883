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

/** Render an AppError as an RFC 9457 problem response. */
export function problemResponse(c: Context, err: AppError): Response {
  const requestId = c.get("requestId") ?? "";
  const body: ProblemBody = {
    // The standard members below win over any detail of the same name.
    ...err.details,
    type: problemType(err.code),
    title: codeToTitle(err.code),
    status: err.status,
    detail: err.message,
    code: err.code,
    request_id: requestId,
    instance: c.req.path.length > 256 ? `${c.req.path.slice(0, 256)}…` : c.req.path,
  };
  if (err.errors !== undefined) {
    body.errors = err.errors;
  }
  const headers: Record<string, string> = { "Content-Type": PROBLEM_CONTENT_TYPE, "X-Request-Id": requestId };
  if (err.retryAfterSeconds !== undefined) {
    headers["Retry-After"] = String(err.retryAfterSeconds);
  }
  if (err.status === 401) {
    headers["WWW-Authenticate"] = 'Bearer realm="orgplane"';
  }
  return new Response(JSON.stringify(body), { status: err.status, headers });
}

export function problem(c: Context, code: ErrorCode, detail: string, errors?: FieldError[]): Response {
  return problemResponse(c, new AppError(code, detail, errors === undefined ? {} : { errors }));
}
