import type { LimitDecision, LimitRequest } from "../domain/rate-limits/rate-limiter.ts";

/**
 * GCRA (generic cell rate algorithm) in exact integer arithmetic, shared by the memory store and mirrored
 * line for line by the Redis Lua script (rate-limiter.redis.ts); docs/rate-limits.md explains the model.
 *
 * A bucket is `{ t0, debt }`: at time `t0` (ms) the bucket owed `debt`, in units of ms × limit. A request of
 * cost c adds c × windowMs; time repays `limit` per ms; the bucket admits while debt ≤ limit × windowMs.
 * Scaling by `limit` keeps every quantity an integer (windowMs / limit, the emission interval, often is not),
 * so "exactly 10 per minute" never drifts by a float rounding at the window edge.
 */
export type GcraState = { t0: number; debt: number };

/**
 * limit × windowMs must stay below 2^50 so that every value, and its quotient by `limit` or `windowMs`, is an
 * exact integer in a double (JavaScript) and in Lua 5.1 (Redis), which has no integer type.
 */
export const MAX_CAPACITY = 2 ** 50;

/** A request the arithmetic cannot honour is a programmer error (limits come from validated config), not data. */
export function checkLimitRequest(request: LimitRequest): void {
  const { limit, windowSeconds, cost } = request;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new RangeError(`rate limit must be a positive integer (got ${limit})`);
  }
  if (!Number.isSafeInteger(windowSeconds) || windowSeconds < 1) {
    throw new RangeError(
      `rate limit window must be a positive whole number of seconds (got ${windowSeconds})`,
    );
  }
  if (!Number.isSafeInteger(cost) || cost < 0) {
    throw new RangeError(`rate limit cost must be a non-negative integer (got ${cost})`);
  }
  if (limit * windowSeconds * 1000 >= MAX_CAPACITY) {
    throw new RangeError(`rate limit ${limit} per ${windowSeconds} s is too large to count exactly`);
  }
}

/** The outcome in milliseconds, before it becomes a LimitDecision; the Lua script returns the same tuple. */
export type GcraOutcome = {
  allowed: boolean;
  remaining: number;
  /** Until the bucket is full again. */
  resetAfterMs: number;
  /** Until a request of the same cost would pass; 0 when allowed. */
  retryAfterMs: number;
  /** The time the decision was taken at (later than the caller's clock if the bucket's clock ran ahead). */
  nowMs: number;
};

/**
 * One decision. Returns the outcome and the state to store (undefined: leave the stored state as it is — a
 * refusal and a zero-cost peek change nothing).
 */
export function gcraStep(
  state: GcraState | undefined,
  limit: number,
  windowMs: number,
  cost: number,
  nowMs: number,
): { outcome: GcraOutcome; next: GcraState | undefined } {
  const capacity = limit * windowMs;
  let now = nowMs;
  let debt = 0;
  if (state !== undefined) {
    // A bucket never goes back in time: a caller whose clock lags the one that wrote the bucket is judged
    // at the bucket's time, so two processes with skewed clocks cannot double the allowance.
    if (now < state.t0) {
      now = state.t0;
    }
    const elapsed = now - state.t0;
    // debt ≤ capacity, so a full window of elapsed time repays it all; the shortcut also keeps
    // elapsed × limit from growing past exact integer range after a long idle period.
    debt = elapsed >= windowMs ? 0 : Math.max(0, state.debt - elapsed * limit);
  }
  const need = cost * windowMs;
  if (cost > limit) {
    // No amount of waiting admits it; the caller must lower the cost. One window is the honest upper bound
    // on how long any earlier state matters.
    return {
      outcome: {
        allowed: false,
        remaining: 0,
        resetAfterMs: Math.ceil(debt / limit),
        retryAfterMs: windowMs,
        nowMs: now,
      },
      next: undefined,
    };
  }
  const after = debt + need;
  if (after <= capacity) {
    return {
      outcome: {
        allowed: true,
        remaining: Math.floor((capacity - after) / windowMs),
        resetAfterMs: Math.ceil(after / limit),
        retryAfterMs: 0,
        nowMs: now,
      },
      next: cost > 0 ? { t0: now, debt: after } : undefined,
    };
  }
  return {
    outcome: {
      allowed: false,
      remaining: 0,
      resetAfterMs: Math.ceil(debt / limit),
      retryAfterMs: Math.ceil((after - capacity) / limit),
      nowMs: now,
    },
    next: undefined,
  };
}

export function toLimitDecision(limit: number, outcome: GcraOutcome): LimitDecision {
  return {
    allowed: outcome.allowed,
    limit,
    remaining: outcome.remaining,
    resetAt: new Date(outcome.nowMs + outcome.resetAfterMs),
    // Whole seconds, rounded up: Retry-After has no fractions, and retrying early would only be refused.
    retryAfterSeconds: Math.ceil(outcome.retryAfterMs / 1000),
  };
}
