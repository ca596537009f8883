/** One signed POST to an endpoint. */
export type WebhookRequest = {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** The whole attempt (connect, send, answer) is abandoned after this long. */
  timeoutMs: number;
};

/** What came of one attempt. Success is a 2xx answer; anything else carries `error`. */
export type WebhookAttempt = {
  /** The HTTP status, or null when none came (refused, timed out, blocked). */
  status: number | null;
  /** Why the attempt failed, for the delivery log; null on success. Never holds a secret. */
  error: string | null;
  /** Milliseconds from the start of the attempt to its end. */
  latencyMs: number;
};

/**
 * The HTTP client the delivery engine posts through (src/infra/webhook-sender.ts): it refuses non-public
 * addresses at connect time unless allowed, follows no redirect and never throws — every failure is an
 * attempt with an error.
 */
export type WebhookSender = {
  send(request: WebhookRequest): Promise<WebhookAttempt>;
  /** Close idle connections kept for reuse. */
  close(): void;
};
