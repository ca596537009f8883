import type { JsonValue } from "./json.ts";
/**
 * The closed set of error codes Orgplane returns. Every code maps to exactly one HTTP status in
 * `codeToStatus`; adding a code without mapping it is a compile error. docs/errors.md lists them.
 */
export type ErrorCode =
  | "validation_failed"
  | "malformed_json"
  | "invalid_signature"
  | "invalid_cursor"
  | "unauthenticated"
  | "invalid_credential"
  | "key_expired"
  | "key_revoked"
  | "token_invalid"
  | "token_expired"
  | "token_issuer_invalid"
  | "token_audience_invalid"
  | "token_signature_invalid"
  | "forbidden"
  | "insufficient_scope"
  | "operator_only"
  | "organization_suspended"
  | "role_ceiling"
  | "invitation_email_mismatch"
  | "quota_exceeded"
  | "rate_limited"
  | "not_found"
  | "route_not_found"
  | "method_not_allowed"
  | "slug_taken"
  | "invalid_state_transition"
  | "last_owner"
  | "already_member"
  | "invitation_pending"
  | "invitation_expired"
  | "idempotency_key_in_use"
  | "billing_provider_not_configured"
  | "billing_provider_error"
  | "insufficient_credits"
  | "reference_taken"
  | "already_reversed"
  | "idempotency_key_reused"
  | "spending_unit_unsupported"
  | "spending_limit_reached"
  | "payload_too_large"
  | "unsupported_media_type"
  | "service_unavailable"
  | "internal_error";

export function codeToStatus(code: ErrorCode): number {
  switch (code) {
    case "validation_failed":
    case "malformed_json":
    case "invalid_cursor":
    case "invalid_signature":
      return 400;
    case "unauthenticated":
    case "invalid_credential":
    case "key_expired":
    case "key_revoked":
    case "token_invalid":
    case "token_expired":
    case "token_issuer_invalid":
    case "token_audience_invalid":
    case "token_signature_invalid":
      return 401;
    case "forbidden":
    case "insufficient_scope":
    case "operator_only":
    case "organization_suspended":
    case "role_ceiling":
    case "invitation_email_mismatch":
    case "quota_exceeded":
      return 403;
    case "not_found":
    case "route_not_found":
      return 404;
    case "method_not_allowed":
      return 405;
    case "slug_taken":
    case "invalid_state_transition":
    case "last_owner":
    case "already_member":
    case "invitation_pending":
    case "idempotency_key_in_use":
    case "billing_provider_not_configured":
    case "insufficient_credits":
    case "reference_taken":
    case "already_reversed":
      return 409;
    case "invitation_expired":
      return 410;
    case "payload_too_large":
      return 413;
    case "unsupported_media_type":
      return 415;
    case "idempotency_key_reused":
    case "spending_unit_unsupported":
      return 422;
    case "spending_limit_reached":
      return 402;
    case "rate_limited":
      return 429;
    case "internal_error":
      return 500;
    case "billing_provider_error":
      return 502;
    case "service_unavailable":
      return 503;
  }
}

export function codeToTitle(code: ErrorCode): string {
  switch (code) {
    case "validation_failed":
      return "Request validation failed";
    case "malformed_json":
      return "Malformed JSON body";
    case "invalid_cursor":
      return "Invalid pagination cursor";
    case "invalid_signature":
      return "Invalid webhook signature";
    case "billing_provider_not_configured":
      return "Billing provider not configured";
    case "billing_provider_error":
      return "Billing provider error";
    case "insufficient_credits":
      return "Insufficient credits";
    case "reference_taken":
      return "Reference already used";
    case "already_reversed":
      return "Transaction already reversed";
    case "unauthenticated":
      return "Authentication required";
    case "invalid_credential":
      return "Invalid credential";
    case "key_expired":
      return "API key expired";
    case "key_revoked":
      return "API key revoked";
    case "token_invalid":
      return "Invalid token";
    case "token_expired":
      return "Token expired";
    case "token_issuer_invalid":
      return "Token issuer not accepted";
    case "token_audience_invalid":
      return "Token audience not accepted";
    case "token_signature_invalid":
      return "Token signature invalid";
    case "role_ceiling":
      return "Role above your own";
    case "invitation_email_mismatch":
      return "Invitation is for another email address";
    case "quota_exceeded":
      return "Quota exceeded";
    case "rate_limited":
      return "Rate limited";
    case "last_owner":
      return "Last owner";
    case "already_member":
      return "Already a member";
    case "invitation_pending":
      return "Invitation already pending";
    case "invitation_expired":
      return "Invitation expired";
    case "forbidden":
      return "Forbidden";
    case "insufficient_scope":
      return "Insufficient scope";
    case "operator_only":
      return "Operator credential required";
    case "organization_suspended":
      return "Organization suspended";
    case "not_found":
      return "Not found";
    case "route_not_found":
      return "Route not found";
    case "method_not_allowed":
      return "Method not allowed";
    case "slug_taken":
      return "Slug already taken";
    case "invalid_state_transition":
      return "Invalid state transition";
    case "idempotency_key_in_use":
      return "Idempotency key in use";
    case "idempotency_key_reused":
      return "Idempotency key reused";
    case "spending_unit_unsupported":
      return "Spending limit unit not supported";
    case "spending_limit_reached":
      return "Spending limit reached";
    case "payload_too_large":
      return "Payload too large";
    case "unsupported_media_type":
      return "Unsupported media type";
    case "service_unavailable":
      return "Service unavailable";
    case "internal_error":
      return "Internal error";
  }
}

export type FieldError = { path: string; message: string };

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly errors: FieldError[] | undefined;
  /** Seconds a client should wait before retrying (429, 503, 409 in-flight). */
  readonly retryAfterSeconds: number | undefined;
  /** Extra members of the problem document (e.g. `quota`, `limit`, `current` of a quota_exceeded). */
  readonly details: Record<string, JsonValue> | undefined;

  constructor(
    code: ErrorCode,
    detail: string,
    options: {
      errors?: FieldError[];
      retryAfterSeconds?: number;
      cause?: unknown;
      details?: Record<string, JsonValue>;
    } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "AppError";
    this.code = code;
    this.errors = options.errors;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.details = options.details;
  }

  get status(): number {
    return codeToStatus(this.code);
  }
}

/** Quote a client-supplied identifier in a message without echoing kilobytes of it back. */
export function quoteId(id: string): string {
  const max = 80;
  return `'${id.length > max ? `${id.slice(0, max)}…` : id}'`;
}

export function notFound(resource: string, id: string): AppError {
  return new AppError("not_found", `${resource} ${quoteId(id)} not found`);
}
