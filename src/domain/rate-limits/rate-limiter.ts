/**
 * A rate-limit decision: requests per window per bucket. Two implementations with the same semantics —
 * in memory (one process) and Redis (every process shares one global limit) — are chosen once in
 * main.ts. Expected outcomes are data, not exceptions.
 */
export type LimitDecision = {
  allowed: boolean;
  /** The limit applied, in requests per window. */
  limit: number;
  /** What is left in the window after this decision (0 when refused). */
  remaining: number;
  /** When the window has fully refilled. */
  resetAt: Date;
  /** Seconds until a request of the same cost would be allowed; 0 when allowed. */
  retryAfterSeconds: number;
};

export type LimitRequest = {
  /** The bucket, e.g. `org_…:search` or `key_…:search`. */
  key: string;
  limit: number;
  windowSeconds: number;
  /** Requests this call counts as (default 1). */
  cost: number;
};

export type RateLimiter = {
  take(request: LimitRequest): Promise<LimitDecision>;
  /** For /readyz: "ok", or "unavailable" when the backing store cannot be reached. */
  health(): Promise<"ok" | "unavailable">;
  close(): Promise<void>;
};
