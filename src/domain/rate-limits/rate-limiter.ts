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
  /**
   * Set when the store could not be reached (or did not answer in time): the decision is then the
   * failure mode's (RATE_LIMIT_FAILURE_MODE), nothing was counted, and its other figures mean nothing.
   */
  unavailable?: true;
};

export type LimitRequest = {
  /** The bucket, e.g. `org_…:search` or `key_…:search`. */
  key: string;
  limit: number;
  windowSeconds: number;
  /** Requests this call counts as (default 1). */
  cost: number;
};

export type RateLimiterStatus = {
  store: "memory" | "redis";
  /** "unavailable" while the store cannot be reached. */
  status: "ok" | "unavailable";
  /** What decisions are while it cannot (RATE_LIMIT_FAILURE_MODE); null for the memory store. */
  failureMode: "open" | "closed" | null;
};

export type RateLimiter = {
  take(request: LimitRequest): Promise<LimitDecision>;
  /** For /readyz: "ok", or "unavailable" when the backing store cannot be reached. */
  health(): Promise<"ok" | "unavailable">;
  close(): Promise<void>;
};
