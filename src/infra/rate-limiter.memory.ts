import type { RateLimiter } from "../domain/rate-limits/rate-limiter.ts";
import type { Clock } from "../lib/clock.ts";
import { checkLimitRequest, type GcraState, gcraStep, toLimitDecision } from "./rate-limiter.gcra.ts";

type Bucket = GcraState & {
  /** From this time the bucket is full again, which is what a missing bucket means: it can be dropped. */
  idleAtMs: number;
};

/**
 * A full bucket is dropped only after it has stayed full this long. A bucket whose limit is far above its
 * traffic is full again a moment after each request; dropped and re-created on every request, it cost two
 * map writes each time, and the map's table, rebuilt every few hundred of them, outlived young-generation
 * collections (a rebuilt table is linked from the one it replaces): a steady stream of promoted garbage.
 */
const IDLE_GRACE_MS = 10_000;

/**
 * Buckets examined for eviction per decision. Two per insert keeps the map within about twice the number of
 * buckets that are not yet full or were full for less than IDLE_GRACE_MS (each full pass over n buckets takes
 * n/2 decisions, during which at most n/2 new ones arrive), at a cost of two map-iterator steps per call
 * instead of a timer that stops the event loop to scan a large map at once.
 */
const SWEEP_STEPS_PER_TAKE = 2;

/**
 * GCRA in one process (rate-limiter.gcra.ts). Exact under concurrency because each decision runs to completion
 * synchronously on the event loop; nothing awaits between reading and writing a bucket.
 */
export function createMemoryRateLimiter(deps: { clock: Clock }): RateLimiter & { bucketCount(): number } {
  const buckets = new Map<string, Bucket>();
  let sweep = buckets.entries();

  function evictIdle(nowMs: number): void {
    for (let i = 0; i < SWEEP_STEPS_PER_TAKE; i++) {
      const step = sweep.next();
      if (step.done === true) {
        // Restart the pass; a Map iterator also visits entries added after it was created.
        sweep = buckets.entries();
        return;
      }
      const [key, bucket] = step.value;
      if (bucket.idleAtMs + IDLE_GRACE_MS <= nowMs) {
        buckets.delete(key);
      }
    }
  }

  return {
    async take(request) {
      checkLimitRequest(request);
      const nowMs = deps.clock.now().getTime();
      const windowMs = request.windowSeconds * 1000;
      const bucket = buckets.get(request.key);
      const { outcome, next } = gcraStep(bucket, request.limit, windowMs, request.cost, nowMs);
      if (next !== undefined) {
        const idleAtMs = next.t0 + Math.ceil(next.debt / request.limit);
        if (bucket === undefined) {
          buckets.set(request.key, { t0: next.t0, debt: next.debt, idleAtMs });
        } else {
          // Updated in place: re-inserting would move the key and cost a second hash operation.
          bucket.t0 = next.t0;
          bucket.debt = next.debt;
          bucket.idleAtMs = idleAtMs;
        }
      }
      evictIdle(nowMs);
      return toLimitDecision(request.limit, outcome);
    },
    async health() {
      return "ok";
    },
    async close() {
      buckets.clear();
    },
    /** For tests of the eviction bound; not part of RateLimiter. */
    bucketCount: () => buckets.size,
  };
}
