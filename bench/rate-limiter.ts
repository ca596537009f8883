/**
 * In-process decisions per second of the rate limiter, each beside a baseline measured in the same run:
 *   memory: limiter.take() in a loop  vs  an empty async function in the same loop (the await floor);
 *   redis:  one EVALSHA per decision   vs  PING through the same ioredis client, and redis-benchmark PING.
 * Redis runs unpipelined (automatic pipelining off, as in production), once with one call in flight and once
 * with 50 (the in-flight count of 50 concurrent HTTP requests). Bounded: PHASE_MS per phase.
 * Usage: npm run bench:limiter   (REDIS_URL, default redis://127.0.0.1:6379; Redis phases skip if unreachable)
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import type { RateLimiter } from "../src/domain/rate-limits/rate-limiter.ts";
import { createMemoryRateLimiter } from "../src/infra/rate-limiter.memory.ts";
import { createRedisRateLimiter } from "../src/infra/rate-limiter.redis.ts";
import { systemClock } from "../src/lib/clock.ts";

/** 3 s per phase: long enough to reach steady state and JIT, short enough for ~25 s in all. */
const PHASE_MS = 3_000;
/** 1,000 buckets: a realistic spread of orgs × categories, so a Map lookup is not a single hot entry. */
const BUCKETS = 1_000;
const IN_FLIGHT = 50;
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";

const prefix = `bench:${randomBytes(4).toString("hex")}`;
const keys = Array.from({ length: BUCKETS }, (_, i) => `${prefix}:${i}`);
// Far above what the loop can spend: every decision is a full GCRA step that is allowed and writes.
const LIMIT = 1_000_000;
const WINDOW_SECONDS = 60;

/** Runs `op` with `inFlight` concurrent sequential loops for PHASE_MS; returns operations per second. */
async function measure(inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  let count = 0;
  const started = performance.now();
  const deadline = started + PHASE_MS;
  async function worker(offset: number): Promise<void> {
    let i = offset;
    while (performance.now() < deadline) {
      // 256 operations between clock reads: performance.now() would otherwise weigh on the memory loop.
      for (let j = 0; j < 256; j++) {
        await op(i++);
      }
      count += 256;
    }
  }
  await Promise.all(Array.from({ length: inFlight }, (_, w) => worker(w * 7919)));
  return count / ((performance.now() - started) / 1000);
}

function fmt(perSecond: number): string {
  return `${Math.round(perSecond).toLocaleString("en-US").padStart(12)} /s`;
}

function row(label: string, perSecond: number, baseline?: number): void {
  const ratio = baseline === undefined ? "" : `   ${((perSecond / baseline) * 100).toFixed(1)}% of baseline`;
  console.log(`  ${label.padEnd(44)}${fmt(perSecond)}${ratio}`);
}

async function take(limiter: RateLimiter, i: number) {
  return limiter.take({
    key: keys[i % BUCKETS] ?? prefix,
    limit: LIMIT,
    windowSeconds: WINDOW_SECONDS,
    cost: 1,
  });
}

async function benchMemory(): Promise<void> {
  console.log(`memory store (${PHASE_MS / 1000} s per phase, ${BUCKETS} buckets, one in flight)`);
  const noop = async (_i: number) => {};
  const baseline = await measure(1, noop);
  const limiter = createMemoryRateLimiter({ clock: systemClock });
  const decisions = await measure(1, (i) => take(limiter, i));
  await limiter.close();
  row("baseline: await of an empty async function", baseline);
  row("memory limiter take()", decisions, baseline);
  console.log(`  target ≥ 200,000 decisions/s: ${decisions >= 200_000 ? "met" : "NOT met"}`);
}

function redisBenchmarkPing(url: URL): string | undefined {
  const result = spawnSync(
    "redis-benchmark",
    ["-h", url.hostname, "-p", url.port || "6379", "-q", "-n", "100000", "-t", "ping"],
    { encoding: "utf8", timeout: 30_000 },
  );
  if (result.status !== 0) {
    return undefined;
  }
  // -q prints progress with carriage returns, then one line per test.
  return result.stdout
    .split(/[\r\n]+/)
    .filter((line) => line.includes("requests per second"))
    .map((line) => line.trim())
    .join("; ");
}

async function benchRedis(): Promise<void> {
  console.log(
    `\nredis store at ${new URL(REDIS_URL).host} (EVALSHA unpipelined, ${PHASE_MS / 1000} s per phase)`,
  );
  const client = new Redis(REDIS_URL, {
    enableAutoPipelining: false,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
  });
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    console.log(`  SKIPPED: Redis unreachable (${error instanceof Error ? error.message : String(error)})`);
    client.disconnect();
    return;
  }
  const limiter = createRedisRateLimiter({ redis: REDIS_URL, failureMode: "closed", timeoutMs: 1_000 });
  for (let i = 0; i < 100 && (await limiter.health()) !== "ok"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  let failed = 0;
  const counted = async (i: number) => {
    const decision = await take(limiter, i);
    if (!decision.allowed) {
      failed++;
    }
  };
  for (const inFlight of [1, IN_FLIGHT]) {
    const ping = await measure(inFlight, () => client.ping());
    const decisions = await measure(inFlight, counted);
    console.log(` ${inFlight} in flight:`);
    row("baseline: PING through ioredis", ping);
    row("redis limiter take() (one EVALSHA)", decisions, ping);
  }
  const external = redisBenchmarkPing(new URL(REDIS_URL));
  console.log(`  redis-benchmark -q -n 100000 -t ping (50 clients): ${external ?? "not available"}`);
  if (failed > 0) {
    // Refusals here mean timeouts turned into the failure mode, which would make the figure meaningless.
    console.log(`  WARNING: ${failed} decisions were refused (timeouts?): the Redis figures are not valid`);
  }
  await limiter.close();
  await client.quit();
}

await benchMemory();
await benchRedis();
