import { createHash } from "node:crypto";
import { Redis } from "ioredis";
import type { LimitDecision, LimitRequest, RateLimiter } from "../domain/rate-limits/rate-limiter.ts";
import type { Clock } from "../lib/clock.ts";
import { turnBatch } from "../lib/turn-batch.ts";
import { checkLimitRequest, type GcraOutcome, toLimitDecision } from "./rate-limiter.gcra.ts";

export type RateLimitFailureMode = "open" | "closed";

/**
 * The same GCRA step as gcraStep() in rate-limiter.gcra.ts, atomically in Redis: a script runs alone on the
 * server, so two processes can never both read a bucket before either writes it.
 * One call decides a batch: the decisions a process asked for during one turn of its event loop, each with
 * its own bucket (KEYS[i]) and arguments, in order. Each is the whole GCRA step, exactly as if it had been a
 * call of its own: a later decision of the batch sees what an earlier one wrote to the same bucket.
 * Lua 5.1 numbers are doubles; every value stays below 2^50 (checkLimitRequest), so they are exact, and the
 * state is written with %d because tostring() would print only 14 significant digits.
 * ARGV: for each key, 4 values: limit, window (ms), cost, now (ms, or "" for the server's clock, read once
 * per call).
 * Returns, for each key, 5 values: allowed (0|1), remaining, resetAfterMs, retryAfterMs, nowMs.
 */
const GCRA_LUA = `
local serverNow
local function step(key, limit, window, cost, now)
  local capacity = limit * window
  local debt = 0
  local state = redis.call('GET', key)
  if state then
    local sep = string.find(state, ':', 1, true)
    local t0 = tonumber(string.sub(state, 1, sep - 1))
    local stored = tonumber(string.sub(state, sep + 1))
    if now < t0 then now = t0 end
    local elapsed = now - t0
    if elapsed >= window then debt = 0 else debt = math.max(0, stored - elapsed * limit) end
  end
  if cost > limit then
    return 0, 0, math.ceil(debt / limit), window, now
  end
  local after = debt + cost * window
  if after <= capacity then
    if cost > 0 then
      redis.call('SET', key, string.format('%d:%d', now, after), 'PX', math.ceil(after / limit))
    end
    return 1, math.floor((capacity - after) / window), math.ceil(after / limit), 0, now
  end
  return 0, 0, math.ceil(debt / limit), math.ceil((after - capacity) / limit), now
end
local out = {}
for i = 1, #KEYS do
  local a = (i - 1) * 4
  local now
  if ARGV[a + 4] == '' then
    if serverNow == nil then
      local t = redis.call('TIME')
      serverNow = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    end
    now = serverNow
  else
    now = tonumber(ARGV[a + 4])
  end
  local allowed, remaining, resetAfter, retryAfter, at =
    step(KEYS[i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), now)
  local o = (i - 1) * 5
  out[o + 1] = allowed
  out[o + 2] = remaining
  out[o + 3] = resetAfter
  out[o + 4] = retryAfter
  out[o + 5] = at
end
return out
`;
const GCRA_SHA = createHash("sha1").update(GCRA_LUA).digest("hex");

/**
 * At most this many decisions per script call; a turn that asked for more sends several calls. Bounds the
 * time one call holds the server (each decision is a GET and at most one SET).
 */
const MAX_BATCH = 500;
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

/** 5 numbers per decision of the batch (see GCRA_LUA). */
function isScriptReply(value: unknown, decisions: number): value is number[] {
  return Array.isArray(value) && value.length === decisions * 5 && value.every((v) => typeof v === "number");
}

/** A decision waiting for its turn's script call: its bucket, its 4 arguments, and who waits for it. */
type Queued = {
  key: string;
  args: [string, string, string, string];
  settle: (outcome: GcraOutcome | Error) => void;
};

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * GCRA shared by every process through one Redis. The decisions asked for during one turn of the event loop
 * go in one EVALSHA at its end (`setImmediate`), each decided in order by the script: under load one call
 * and one round trip serve many decisions, alone a decision waits for nothing but the rest of its turn
 * (docs/rate-limits.md, "Batches"). Automatic pipelining stays off: there is one command per turn anyway.
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

  async function runScript(keys: string[], args: string[]): Promise<unknown> {
    const startedMs = performance.now();
    try {
      return await redis.evalsha(GCRA_SHA, keys.length, ...keys, ...args);
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
        return await Promise.race([redis.eval(GCRA_LUA, keys.length, ...keys, ...args), expired]);
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** One script call for up to MAX_BATCH queued decisions; each waiter gets its outcome or the call's error. */
  async function decide(batch: Queued[]): Promise<void> {
    const keys = batch.map((q) => q.key);
    const args = batch.flatMap((q) => q.args);
    const failAll = (failure: Error) => {
      for (const q of batch) {
        q.settle(failure);
      }
    };
    let reply: unknown;
    try {
      reply = await runScript(keys, args);
    } catch (error) {
      failAll(asError(error));
      return;
    }
    if (!isScriptReply(reply, batch.length)) {
      failAll(new Error("unexpected reply from the rate-limit script"));
      return;
    }
    for (const [i, q] of batch.entries()) {
      const o = i * 5;
      q.settle({
        allowed: reply[o] === 1,
        remaining: reply[o + 1] as number,
        resetAfterMs: reply[o + 2] as number,
        retryAfterMs: reply[o + 3] as number,
        nowMs: reply[o + 4] as number,
      });
    }
  }

  /** The decisions of one turn, in the order asked, MAX_BATCH to a script call. */
  const enqueue = turnBatch<Queued>(MAX_BATCH, (batch) => void decide(batch));

  return {
    async take(request) {
      checkLimitRequest(request);
      if (redis.status !== "ready") {
        return failureDecision(request, new Error(`Redis connection is ${redis.status}`));
      }
      const outcome = await new Promise<GcraOutcome | Error>((settle) => {
        enqueue({
          key: KEY_PREFIX + request.key,
          args: [
            String(request.limit),
            String(request.windowSeconds * 1000),
            String(request.cost),
            clock === undefined ? "" : String(clock.now().getTime()),
          ],
          settle,
        });
      });
      return outcome instanceof Error
        ? failureDecision(request, outcome)
        : toLimitDecision(request.limit, outcome);
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
