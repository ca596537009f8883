import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { LimitDecision, LimitRequest, RateLimiter } from "../domain/rate-limits/rate-limiter.ts";
import type { Clock } from "../lib/clock.ts";
import { checkLimitRequest, type GcraOutcome, toLimitDecision } from "./rate-limiter.gcra.ts";

export type RateLimitFailureMode = "open" | "closed";

/**
 * The same GCRA step as gcraStep() in rate-limiter.gcra.ts, atomically in Redis: a script runs alone on the
 * server, so two processes can never both read a bucket before either writes it.
 * Lua 5.1 numbers are doubles; every value stays below 2^50 (checkLimitRequest), so they are exact, and the
 * state is written with %d because tostring() would print only 14 significant digits.
 * ARGV: limit, window (ms), cost, now (ms, or "" for the server's clock).
 * Returns { allowed (0|1), remaining, resetAfterMs, retryAfterMs, nowMs }.
 */
const GCRA_LUA = `
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[4])
end
local capacity = limit * window
local debt = 0
local state = redis.call('GET', KEYS[1])
if state then
  local sep = string.find(state, ':', 1, true)
  local t0 = tonumber(string.sub(state, 1, sep - 1))
  local stored = tonumber(string.sub(state, sep + 1))
  if now < t0 then now = t0 end
  local elapsed = now - t0
  if elapsed >= window then debt = 0 else debt = math.max(0, stored - elapsed * limit) end
end
if cost > limit then
  return {0, 0, math.ceil(debt / limit), window, now}
end
local after = debt + cost * window
if after <= capacity then
  if cost > 0 then
    redis.call('SET', KEYS[1], string.format('%d:%d', now, after), 'PX', math.ceil(after / limit))
  end
  return {1, math.floor((capacity - after) / window), math.ceil(after / limit), 0, now}
end
return {0, 0, math.ceil(debt / limit), math.ceil((after - capacity) / limit), now}
`;
const GCRA_SHA = createHash("sha1").update(GCRA_LUA).digest("hex");

/** Keys share the server with other data; the prefix keeps them apart and easy to inspect. */
const KEY_PREFIX = "orgplane:rl:";
/** 50 ms: the bound on how long a request may wait on Redis. */
export const DEFAULT_REDIS_TIMEOUT_MS = 50;
/**
 * Reconnect backoff, capped at 1 s: the limiter resumes within about a second of Redis returning, for the
 * price of one connection attempt per second while it is down.
 */
const RECONNECT_STEP_MS = 100;
const RECONNECT_MAX_MS = 1_000;
/** A fresh connect (TCP + HELLO) may take longer than one decision; requests do not wait for it anyway. */
const CONNECT_TIMEOUT_MS = 1_000;
/** quit() waits for replies in flight; a dead server would hold close() forever without this. */
const CLOSE_TIMEOUT_MS = 1_000;

export type RedisRateLimiterOptions = {
  /** The Redis URL. The limiter owns this connection: its timeouts are what bound every decision. */
  redis: string;
  /**
   * Omitted: the Redis server's TIME, one clock for every process. Given: its time is passed to the script
   * (tests with a controllable clock); key TTLs are still real time, so it must not run behind real time.
   */
  clock?: Clock | undefined;
  failureMode: RateLimitFailureMode;
  timeoutMs?: number | undefined;
  /**
   * Told about connection errors and every error that turned into a failure-mode decision, which while
   * Redis is down is every decision: the receiver should count, or log at a bounded rate.
   */
  onError?: ((error: Error) => void) | undefined;
};

type ScriptReply = [number, number, number, number, number];

function isScriptReply(value: unknown): value is ScriptReply {
  return Array.isArray(value) && value.length === 5 && value.every((v) => typeof v === "number");
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * GCRA shared by every process through one Redis. One EVALSHA per decision, unpipelined (automatic
 * pipelining measured slower for Lua calls here, see architecture.md).
 */
export function createRedisRateLimiter(options: RedisRateLimiterOptions): RateLimiter {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
  // ioredis reads a commandTimeout of 0 as "wait forever", the one thing this limiter must never do.
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) {
    throw new RangeError(`rate limiter timeoutMs must be a positive integer (got ${timeoutMs})`);
  }
  const onError = options.onError ?? (() => {});
  const clock = options.clock;
  const redis = new Redis(options.redis, {
    // Fail at once while disconnected instead of queueing: a decision must never wait for a reconnect.
    enableOfflineQueue: false,
    commandTimeout: timeoutMs,
    // A decision that failed has already been answered with the failure mode; resending it after a
    // reconnect would count the request a second time.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    retryStrategy: (times) => Math.min(times * RECONNECT_STEP_MS, RECONNECT_MAX_MS),
    enableAutoPipelining: false,
  });
  // Without a listener ioredis reports each failed reconnect as an unhandled error event.
  redis.on("error", (error: Error) => onError(error));

  function failureDecision(request: LimitRequest, error: unknown): LimitDecision {
    onError(asError(error));
    const now = clock?.now() ?? new Date();
    if (options.failureMode === "open") {
      // Nothing is known about the bucket: answer as if it were full, which is what "open" promises.
      return {
        allowed: true,
        limit: request.limit,
        remaining: Math.max(0, request.limit - request.cost),
        resetAt: now,
        retryAfterSeconds: 0,
        unavailable: true,
      };
    }
    // 1 s: long enough not to hammer a recovering server, short enough to notice recovery quickly.
    return {
      allowed: false,
      limit: request.limit,
      remaining: 0,
      resetAt: new Date(now.getTime() + 1_000),
      retryAfterSeconds: 1,
      unavailable: true,
    };
  }

  async function runScript(key: string, args: string[]): Promise<unknown> {
    const startedMs = performance.now();
    try {
      return await redis.evalsha(GCRA_SHA, 1, key, ...args);
    } catch (error) {
      // A restarted or flushed server has forgotten the script; EVAL runs it and caches it again, so the
      // next decision is back on EVALSHA. The retry gets only what is left of the budget (commandTimeout
      // alone would allow it a second full one); rare, so its own timer does not cost the hot path.
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) {
        throw error;
      }
      const leftMs = timeoutMs - (performance.now() - startedMs);
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("rate-limit script timed out after NOSCRIPT")), leftMs);
      });
      try {
        return await Promise.race([redis.eval(GCRA_LUA, 1, key, ...args), expired]);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  return {
    async take(request) {
      checkLimitRequest(request);
      if (redis.status !== "ready") {
        return failureDecision(request, new Error(`Redis connection is ${redis.status}`));
      }
      const windowMs = request.windowSeconds * 1000;
      const args = [
        String(request.limit),
        String(windowMs),
        String(request.cost),
        clock === undefined ? "" : String(clock.now().getTime()),
      ];
      try {
        const reply = await runScript(KEY_PREFIX + request.key, args);
        if (!isScriptReply(reply)) {
          return failureDecision(request, new Error("unexpected reply from the rate-limit script"));
        }
        const outcome: GcraOutcome = {
          allowed: reply[0] === 1,
          remaining: reply[1],
          resetAfterMs: reply[2],
          retryAfterMs: reply[3],
          nowMs: reply[4],
        };
        return toLimitDecision(request.limit, outcome);
      } catch (error) {
        return failureDecision(request, error);
      }
    },
    async health() {
      if (redis.status !== "ready") {
        return "unavailable";
      }
      try {
        await redis.ping();
        return "ok";
      } catch {
        return "unavailable";
      }
    },
    async close() {
      if (redis.status === "end") {
        return;
      }
      const closed = new Promise<void>((resolve) => redis.once("end", () => resolve()));
      const timer = setTimeout(() => redis.disconnect(), CLOSE_TIMEOUT_MS);
      try {
        await redis.quit();
      } catch {
        redis.disconnect();
      }
      await closed;
      clearTimeout(timer);
    },
  };
}
