import type { Config } from "../config.ts";
import type { RateLimiter, RateLimiterStatus } from "../domain/rate-limits/rate-limiter.ts";
import type { Clock } from "../lib/clock.ts";
import { createMemoryRateLimiter } from "./rate-limiter.memory.ts";
import { createRedisRateLimiter } from "./rate-limiter.redis.ts";

/**
 * The one place that chooses the store: Redis when REDIS_URL is set (every process shares one limit),
 * otherwise this process's memory. With Redis the clock is the server's TIME, not `clock`: processes'
 * clocks differ, the server's is one clock for all of them.
 */
export function createRateLimiter(
  config: Pick<Config, "redisUrl" | "rateLimitFailureMode">,
  clock: Clock,
  options: { onError?: (error: Error) => void } = {},
): RateLimiter {
  if (config.redisUrl === undefined) {
    return createMemoryRateLimiter({ clock });
  }
  return createRedisRateLimiter({
    redis: config.redisUrl,
    failureMode: config.rateLimitFailureMode,
    onError: options.onError,
  });
}

/** What /readyz reports of the limiter: its store, whether it answers, and what happens when it does not. */
export function rateLimiterStatus(
  config: Pick<Config, "redisUrl" | "rateLimitFailureMode">,
  limiter: Pick<RateLimiter, "health">,
): () => Promise<RateLimiterStatus> {
  const store = config.redisUrl === undefined ? "memory" : "redis";
  const failureMode = store === "redis" ? config.rateLimitFailureMode : null;
  return async () => ({ store, status: await limiter.health(), failureMode });
}
