import type { MiddlewareHandler } from "hono";
import {
  limiterUnavailable,
  type RateLimitOutcome,
  rateLimited,
} from "../../domain/rate-limits/rate-limits.service.ts";
import type { AppEnv } from "../env.ts";
import { problemResponse } from "../problem.ts";

/**
 * The IETF draft headers (draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy` names the policy with
 * its quota `q` and window `w`; `RateLimit` its remaining `r` and seconds to reset `t`) and the common
 * `X-RateLimit-*` trio, whose `Reset` is a Unix time in seconds as GitHub's and Stripe's clients expect.
 */
export function rateLimitHeaders(outcome: RateLimitOutcome): [string, string][] {
  const { category, limit, windowSeconds, decision, resetSeconds } = outcome;
  return [
    ["RateLimit-Policy", `"${category}";q=${limit};w=${windowSeconds}`],
    ["RateLimit", `"${category}";r=${decision.remaining};t=${resetSeconds}`],
    ["X-RateLimit-Limit", String(limit)],
    ["X-RateLimit-Remaining", String(decision.remaining)],
    ["X-RateLimit-Reset", String(Math.ceil(decision.resetAt.getTime() / 1000))],
  ];
}

/**
 * Counts the request against its organization's limit of `category` (docs/rate-limits.md). Runs after the
 * route's access guard, so the principal is resolved (a member, not a bare user) and refused requests are
 * not counted. The operator is never limited.
 */
export function rateLimit(category: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const outcome = await c.var.services.rateLimits.take(c.var.principal, category);
    if (outcome === undefined) {
      await next();
      return undefined;
    }
    if (outcome.decision.unavailable === true) {
      // Nothing was counted: closed refuses with a 503, open lets the request through without headers.
      if (!outcome.decision.allowed) {
        throw limiterUnavailable();
      }
      await next();
      return undefined;
    }
    const { principal } = c.var;
    if (principal.kind === "api_key" || principal.kind === "member") {
      c.var.services.telemetry.apiRequest({
        orgId: principal.orgId,
        category,
        outcome: outcome.decision.allowed ? "allowed" : "rate_limited",
        limit: { limit: outcome.limit, remaining: outcome.decision.remaining },
        at: new Date(),
      });
    }
    const headers = rateLimitHeaders(outcome);
    if (!outcome.decision.allowed) {
      const res = problemResponse(c, rateLimited(outcome));
      for (const [name, value] of headers) {
        res.headers.set(name, value);
      }
      return res;
    }
    await next();
    for (const [name, value] of headers) {
      c.res.headers.set(name, value);
    }
    return undefined;
  };
}
