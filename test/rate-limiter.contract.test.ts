import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.ts";
import type { LimitDecision, LimitRequest, RateLimiter } from "../src/domain/rate-limits/rate-limiter.ts";
import { createMemoryRateLimiter } from "../src/infra/rate-limiter.memory.ts";
import { createRedisRateLimiter, type RateLimitFailureMode } from "../src/infra/rate-limiter.redis.ts";
import { createRateLimiter } from "../src/infra/rate-limiter.ts";
import type { Clock } from "../src/lib/clock.ts";
import { freePort } from "./util.ts";

/**
 * One contract, two stores: every case below runs against the memory limiter and the Redis limiter, which
 * must give the same answers (docs/rate-limits.md). The Redis variant needs TEST_REDIS_URL.
 */

const REDIS_URL = process.env.TEST_REDIS_URL === "" ? undefined : process.env.TEST_REDIS_URL;
if (REDIS_URL === undefined) {
  // biome-ignore lint/suspicious/noConsole: a skipped store must be impossible to miss in the test output.
  console.warn(
    "\n!!! TEST_REDIS_URL is not set: the Redis rate-limiter contract suite is SKIPPED. " +
      "Set TEST_REDIS_URL=redis://127.0.0.1:6379 to run it. !!!\n",
  );
}

/** A clock the test moves by hand. Starts at a fixed, realistic epoch so every run sees the same numbers. */
function manualClock(startMs = Date.UTC(2026, 0, 1)): Clock & { ms: number; advance(ms: number): void } {
  const clock = {
    ms: startMs,
    now: () => new Date(clock.ms),
    advance(ms: number) {
      clock.ms += ms;
    },
  };
  return clock;
}

type Store = {
  name: string;
  /** False: every case is reported as skipped (the loud warning above says why). */
  available: boolean;
  /** A fresh limiter; several calls share one backing store (for Redis, separate connections). */
  create(clock: Clock): RateLimiter;
};

const opened: RateLimiter[] = [];
function track<T extends RateLimiter>(limiter: T): T {
  opened.push(limiter);
  return limiter;
}
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

const memoryStore: Store = {
  name: "memory",
  available: true,
  // The memory store is one process: "two limiters" share one instance, as two callers in one process do.
  create: (() => {
    const shared = new Map<Clock, RateLimiter>();
    return (clock: Clock) => {
      const existing = shared.get(clock);
      if (existing !== undefined) {
        return existing;
      }
      const limiter = track(createMemoryRateLimiter({ clock }));
      shared.set(clock, limiter);
      return limiter;
    };
  })(),
};

const redisStore: Store = {
  name: "redis",
  available: REDIS_URL !== undefined,
  create: (clock) =>
    track(
      createRedisRateLimiter({
        redis: REDIS_URL ?? "",
        clock,
        failureMode: "closed",
        // Generous: a loaded CI machine must not turn a slow reply into a failure-mode answer.
        timeoutMs: 2_000,
      }),
    ),
};

/** Waits until a Redis limiter has connected (its first decisions would otherwise get the failure mode). */
async function ready(limiter: RateLimiter, attempts = 200): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if ((await limiter.health()) === "ok") {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("rate limiter did not become healthy");
}

function bucket(): string {
  return `test:${randomBytes(8).toString("hex")}`;
}

async function takeMany(
  limiter: RateLimiter,
  request: LimitRequest,
  times: number,
): Promise<LimitDecision[]> {
  const out: LimitDecision[] = [];
  for (let i = 0; i < times; i++) {
    out.push(await limiter.take(request));
  }
  return out;
}

describe.each([memoryStore, redisStore])("rate limiter contract: $name store", (store) => {
  beforeEach((context) => {
    if (!store.available) {
      context.skip();
    }
  });

  async function limiterAt(clock: Clock): Promise<RateLimiter> {
    const limiter = store.create(clock);
    await ready(limiter);
    return limiter;
  }

  it("allows exactly the limit at once, then refuses", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 10, windowSeconds: 60, cost: 1 };
    const decisions = await takeMany(limiter, request, 12);
    expect(decisions.map((d) => d.allowed)).toEqual([...Array(10).fill(true), false, false]);
    expect(decisions.map((d) => d.remaining)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]);
    expect(decisions.every((d) => d.limit === 10)).toBe(true);
  });

  it("reports remaining, reset_at and retry_after exactly", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 10, windowSeconds: 60, cost: 1 };
    const first = await limiter.take(request);
    // One request in: the bucket is full again one emission interval (60 s / 10 = 6 s) later.
    expect(first).toEqual({
      allowed: true,
      limit: 10,
      remaining: 9,
      resetAt: new Date(clock.ms + 6_000),
      retryAfterSeconds: 0,
    });
    await takeMany(limiter, request, 9);
    const refused = await limiter.take(request);
    expect(refused).toEqual({
      allowed: false,
      limit: 10,
      remaining: 0,
      resetAt: new Date(clock.ms + 60_000),
      retryAfterSeconds: 6,
    });
    // 2.5 s later: 3.5 s until the next token, rounded up to whole seconds.
    clock.advance(2_500);
    expect(await limiter.take(request)).toMatchObject({ allowed: false, retryAfterSeconds: 4 });
  });

  it("refills one request per window/limit and the whole limit after one window, not a millisecond earlier", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 10, windowSeconds: 60, cost: 1 };
    await takeMany(limiter, request, 10);

    clock.advance(5_999);
    expect((await limiter.take(request)).allowed).toBe(false);
    clock.advance(1);
    expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 0 });
    expect((await limiter.take(request)).allowed).toBe(false);

    // The bucket was full again 60 s after its last request (at 6 s): one millisecond short of that…
    clock.advance(59_999);
    const justBefore = await takeMany(limiter, request, 10);
    expect(justBefore.filter((d) => d.allowed).length).toBe(9);
    // …and on the edge itself, the whole limit.
    const fresh = manualClock(clock.ms);
    const other = { ...request, key: bucket() };
    const limiter2 = await limiterAt(fresh);
    await takeMany(limiter2, other, 10);
    fresh.advance(60_000);
    const onEdge = await takeMany(limiter2, other, 11);
    expect(onEdge.map((d) => d.allowed)).toEqual([...Array(10).fill(true), false]);
  });

  it("does not refill between calls while the clock stands still", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 3, windowSeconds: 1, cost: 1 };
    const decisions = await takeMany(limiter, request, 5);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
  });

  it("counts a cost greater than 1 as that many requests, all or nothing", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 10, windowSeconds: 60, cost: 4 };
    expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 6 });
    expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 2 });
    // 2 left, 4 asked: refused, and nothing is taken — the 2 remain for smaller requests.
    expect(await limiter.take(request)).toMatchObject({
      allowed: false,
      remaining: 0,
      retryAfterSeconds: 12,
    });
    expect(await limiter.take({ ...request, cost: 2 })).toMatchObject({ allowed: true, remaining: 0 });
    expect((await limiter.take({ ...request, cost: 1 })).allowed).toBe(false);
  });

  it("always refuses a cost larger than the limit, without touching the bucket", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const key = bucket();
    const big = await limiter.take({ key, limit: 5, windowSeconds: 60, cost: 6 });
    expect(big).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 60 });
    expect(big.resetAt).toEqual(new Date(clock.ms));
    const after = await limiter.take({ key, limit: 5, windowSeconds: 60, cost: 5 });
    expect(after).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("peeks with cost 0: reports the bucket without spending", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 5, windowSeconds: 60, cost: 1 };
    expect(await limiter.take({ ...request, cost: 0 })).toMatchObject({ allowed: true, remaining: 5 });
    await takeMany(limiter, request, 2);
    expect(await limiter.take({ ...request, cost: 0 })).toMatchObject({ allowed: true, remaining: 3 });
    expect(await limiter.take({ ...request, cost: 0 })).toMatchObject({ allowed: true, remaining: 3 });
  });

  it("keeps buckets independent", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const a = { key: bucket(), limit: 2, windowSeconds: 60, cost: 1 };
    const b = { key: bucket(), limit: 2, windowSeconds: 60, cost: 1 };
    await takeMany(limiter, a, 2);
    expect((await limiter.take(a)).allowed).toBe(false);
    expect(await limiter.take(b)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it("judges a clock that went back at the bucket's time, never refunding", async () => {
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const request = { key: bucket(), limit: 2, windowSeconds: 60, cost: 1 };
    const writtenAt = clock.ms;
    await takeMany(limiter, request, 2);
    clock.advance(-30_000);
    const late = await limiter.take(request);
    expect(late).toMatchObject({ allowed: false, retryAfterSeconds: 30 });
    expect(late.resetAt).toEqual(new Date(writtenAt + 60_000));
  });

  it("refuses requests that the arithmetic cannot honour", async () => {
    const limiter = await limiterAt(manualClock());
    const key = bucket();
    await expect(limiter.take({ key, limit: 0, windowSeconds: 60, cost: 1 })).rejects.toThrow(RangeError);
    await expect(limiter.take({ key, limit: 10, windowSeconds: 0.5, cost: 1 })).rejects.toThrow(RangeError);
    await expect(limiter.take({ key, limit: 10, windowSeconds: 60, cost: -1 })).rejects.toThrow(RangeError);
    await expect(limiter.take({ key, limit: 1e12, windowSeconds: 86_400, cost: 1 })).rejects.toThrow(
      RangeError,
    );
  });

  it("allows exactly 100 of 1,000 parallel requests against a limit of 100, across two limiters", async () => {
    const clock = manualClock();
    const first = await limiterAt(clock);
    const second = await limiterAt(clock);
    const request = { key: bucket(), limit: 100, windowSeconds: 60, cost: 1 };
    const decisions = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => (i % 2 === 0 ? first : second).take(request)),
    );
    const allowed = decisions.filter((d) => d.allowed).length;
    expect(allowed, `allowed ${allowed} of 1000`).toBe(100);
    expect(decisions.filter((d) => d.allowed && d.remaining === 0).length).toBe(1);
  });

  it("decides requests asked for at once in the order asked, across many buckets and past one batch", async () => {
    // The Redis store sends the decisions of one turn of the event loop in script calls of up to 500:
    // 1,300 asked at once span three calls, and must come out exactly as if asked one by one.
    const clock = manualClock();
    const limiter = await limiterAt(clock);
    const busy = { key: bucket(), limit: 700, windowSeconds: 60, cost: 1 };
    const others = [bucket(), bucket(), bucket()];
    const asked = Array.from({ length: 1_300 }, (_, i) =>
      i % 4 === 3 ? { key: others[i % 3] as string, limit: 100, windowSeconds: 60, cost: 2 } : { ...busy },
    );
    const decisions = await Promise.all(asked.map((request) => limiter.take(request)));
    const busyDecisions = decisions.filter((_, i) => i % 4 !== 3);
    expect(busyDecisions.length).toBe(975);
    expect(busyDecisions.map((d) => d.allowed)).toEqual([
      ...Array(700).fill(true),
      ...Array(275).fill(false),
    ]);
    expect(busyDecisions.slice(0, 700).map((d) => d.remaining)).toEqual(
      Array.from({ length: 700 }, (_, i) => 699 - i),
    );
    for (const key of others) {
      const mine = decisions.filter((_, i) => i % 4 === 3 && asked[i]?.key === key);
      // Cost 2 against 100: the first 50 of each bucket, then refusals.
      expect(mine.map((d) => d.allowed)).toEqual(Array.from({ length: mine.length }, (_, i) => i < 50));
    }
  });
});

describe("memory rate limiter", () => {
  it("forgets buckets once they are full again, so memory stays bounded", async () => {
    const clock = manualClock();
    const limiter = track(createMemoryRateLimiter({ clock }));
    for (let i = 0; i < 1_000; i++) {
      await limiter.take({ key: `k${i}`, limit: 10, windowSeconds: 1, cost: 1 });
    }
    expect(limiter.bucketCount()).toBe(1_000);
    // One request in a 10-per-second bucket is repaid after 100 ms; a full bucket is kept 10 s more (a bucket
    // far from its limit is not dropped and re-created on every request), then dropped.
    clock.advance(100 + 9_999);
    for (let i = 0; i < 1_000; i++) {
      await limiter.take({ key: "busy", limit: 10, windowSeconds: 1, cost: 0 });
    }
    expect(limiter.bucketCount()).toBe(1_000);
    clock.advance(1);
    for (let i = 0; i < 1_000; i++) {
      await limiter.take({ key: "busy", limit: 10, windowSeconds: 1, cost: 0 });
    }
    expect(limiter.bucketCount()).toBe(0);
  });

  it("keeps a busy bucket far below its limit instead of dropping and re-creating it", async () => {
    const clock = manualClock();
    const limiter = track(createMemoryRateLimiter({ clock }));
    const request = { key: "roomy", limit: 1_000_000, windowSeconds: 60, cost: 1 };
    for (let i = 0; i < 1_000; i++) {
      clock.advance(1);
      expect((await limiter.take(request)).remaining).toBe(999_999);
    }
    expect(limiter.bucketCount()).toBe(1);
  });

  it("keeps a bucket that is still refilling", async () => {
    const clock = manualClock();
    const limiter = track(createMemoryRateLimiter({ clock }));
    const request = { key: "held", limit: 2, windowSeconds: 60, cost: 2 };
    await limiter.take(request);
    clock.advance(59_999);
    for (let i = 0; i < 100; i++) {
      await limiter.take({ key: `other${i}`, limit: 2, windowSeconds: 60, cost: 0 });
    }
    expect(limiter.bucketCount()).toBe(1);
    expect((await limiter.take(request)).allowed).toBe(false);
  });
});

describe.skipIf(REDIS_URL === undefined)("redis rate limiter", () => {
  it("shares one exact limit on the server's clock across two connections", async () => {
    // The server's TIME moves during the test: a day-long window refills one request per 864 s, so none
    // arrives while it runs.
    const open = () =>
      track(createRedisRateLimiter({ redis: REDIS_URL ?? "", failureMode: "closed", timeoutMs: 2_000 }));
    const first = open();
    const second = open();
    await Promise.all([ready(first), ready(second)]);
    const request = { key: bucket(), limit: 100, windowSeconds: 86_400, cost: 1 };
    const decisions = await Promise.all(
      Array.from({ length: 1_000 }, (_, i) => (i % 2 === 0 ? first : second).take(request)),
    );
    const allowed = decisions.filter((d) => d.allowed).length;
    expect(allowed, `allowed ${allowed} of 1000`).toBe(100);
    // Its TTL is a day; the shared server should not keep it that long.
    const probe = new Redis(REDIS_URL ?? "");
    try {
      await probe.del(`orgplane:rl:${request.key}`);
    } finally {
      probe.disconnect();
    }
  });

  it("stores each bucket with a TTL that ends when it is full again", async () => {
    const clock = manualClock();
    const limiter = track(
      createRedisRateLimiter({ redis: REDIS_URL ?? "", clock, failureMode: "closed", timeoutMs: 2_000 }),
    );
    await ready(limiter);
    const key = bucket();
    await limiter.take({ key, limit: 10, windowSeconds: 60, cost: 3 });
    const probe = new Redis(REDIS_URL ?? "");
    try {
      const ttl = await probe.pttl(`orgplane:rl:${key}`);
      // 3 requests at 6 s each: 18 s of debt, minus whatever passed since.
      expect(ttl).toBeGreaterThan(17_000);
      expect(ttl).toBeLessThanOrEqual(18_000);
      expect(await probe.get(`orgplane:rl:${key}`)).toBe(`${clock.ms}:${18_000 * 10}`);
    } finally {
      probe.disconnect();
    }
  });

  describe.each<RateLimitFailureMode>(["closed", "open"])("unreachable Redis, failure mode %s", (mode) => {
    it("answers with the failure mode and reports unavailable", async () => {
      const port = await freePort();
      const limiter = track(
        createRedisRateLimiter({ redis: `redis://127.0.0.1:${port}`, failureMode: mode, timeoutMs: 50 }),
      );
      const decision = await limiter.take({ key: bucket(), limit: 10, windowSeconds: 60, cost: 1 });
      if (mode === "closed") {
        expect(decision).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1 });
      } else {
        expect(decision).toMatchObject({ allowed: true, remaining: 9, retryAfterSeconds: 0 });
      }
      expect(await limiter.health()).toBe("unavailable");
    });
  });

  const hasRedisServer = spawnSync("redis-server", ["--version"]).status === 0;
  if (!hasRedisServer) {
    // biome-ignore lint/suspicious/noConsole: a skipped case must be impossible to miss in the test output.
    console.warn("\n!!! redis-server is not installed: the Redis stop-and-restart case is SKIPPED. !!!\n");
  }

  describe.skipIf(!hasRedisServer)("a Redis server that stops and comes back", () => {
    // A private server on a free port: the shared one on 6379 serves other suites and must keep running.
    const servers: ChildProcess[] = [];
    async function startServer(port: number): Promise<ChildProcess> {
      const child = spawn(
        "redis-server",
        ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        { stdio: "ignore" },
      );
      servers.push(child);
      return child;
    }
    async function stopServer(child: ChildProcess): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) {
        return;
      }
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    afterAll(async () => {
      await Promise.all(servers.map(stopServer));
    });

    it("refuses while Redis is down, recovers when it returns, and reloads its script", async () => {
      const port = await freePort();
      const first = await startServer(port);
      const clock = manualClock();
      const limiter = track(
        createRedisRateLimiter({
          redis: `redis://127.0.0.1:${port}`,
          clock,
          failureMode: "closed",
          timeoutMs: 2_000,
        }),
      );
      await ready(limiter);
      const request = { key: bucket(), limit: 10, windowSeconds: 60, cost: 1 };
      expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 9 });

      await stopServer(first);
      expect(await limiter.take(request)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
      expect(await limiter.health()).toBe("unavailable");

      // The new server starts empty and without the script: the first decision goes through EVAL.
      await startServer(port);
      await ready(limiter);
      expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 9 });
      expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 8 });
    });

    it("reloads its script for a whole batch after SCRIPT FLUSH", async () => {
      const port = await freePort();
      await startServer(port);
      const limiter = track(
        createRedisRateLimiter({
          redis: `redis://127.0.0.1:${port}`,
          failureMode: "closed",
          timeoutMs: 2_000,
        }),
      );
      await ready(limiter);
      const request = { key: bucket(), limit: 30, windowSeconds: 60, cost: 1 };
      expect(await limiter.take(request)).toMatchObject({ allowed: true, remaining: 29 });
      const admin = new Redis(`redis://127.0.0.1:${port}`);
      try {
        await admin.script("FLUSH");
      } finally {
        admin.disconnect();
      }
      const decisions = await Promise.all(Array.from({ length: 40 }, () => limiter.take(request)));
      expect(decisions.filter((d) => d.unavailable === true)).toEqual([]);
      expect(decisions.map((d) => d.allowed)).toEqual([...Array(29).fill(true), ...Array(11).fill(false)]);
    });

    it("answers with the failure mode when a connected Redis stops replying, and resumes after", async () => {
      const port = await freePort();
      const child = await startServer(port);
      const limiter = track(
        createRedisRateLimiter({ redis: `redis://127.0.0.1:${port}`, failureMode: "closed", timeoutMs: 50 }),
      );
      await ready(limiter);
      const request = { key: bucket(), limit: 10, windowSeconds: 60, cost: 1 };
      expect((await limiter.take(request)).allowed).toBe(true);

      // A frozen server keeps the connection open: only the command timeout can end the wait.
      child.kill("SIGSTOP");
      try {
        expect(await limiter.take(request)).toMatchObject({ allowed: false, retryAfterSeconds: 1 });
        expect(await limiter.health()).toBe("unavailable");
      } finally {
        child.kill("SIGCONT");
      }
      await ready(limiter);
      expect((await limiter.take(request)).allowed).toBe(true);
    });
  });
});

describe("rate limiter configuration", () => {
  it("defaults to the memory store, failing closed", () => {
    const config = loadConfig({});
    expect(config.redisUrl).toBeUndefined();
    expect(config.rateLimitFailureMode).toBe("closed");
  });

  it("reads REDIS_URL and RATE_LIMIT_FAILURE_MODE", () => {
    const config = loadConfig({ REDIS_URL: "redis://127.0.0.1:6379/2", RATE_LIMIT_FAILURE_MODE: "open" });
    expect(config.redisUrl).toBe("redis://127.0.0.1:6379/2");
    expect(config.rateLimitFailureMode).toBe("open");
  });

  it("refuses a bad failure mode, and a bad REDIS_URL without echoing it (it may hold a password)", () => {
    expect(() => loadConfig({ RATE_LIMIT_FAILURE_MODE: "maybe" })).toThrow(
      /RATE_LIMIT_FAILURE_MODE must be open or closed/,
    );
    const bad = () => loadConfig({ REDIS_URL: "http://user:s3cret@example.com" });
    expect(bad).toThrow(ConfigError);
    expect(bad).toThrow(/^invalid configuration: REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL$/);
  });

  it("chooses the memory store without REDIS_URL", async () => {
    const clock = manualClock();
    const limiter = track(createRateLimiter({ redisUrl: undefined, rateLimitFailureMode: "closed" }, clock));
    const request = { key: bucket(), limit: 1, windowSeconds: 60, cost: 1 };
    expect((await limiter.take(request)).allowed).toBe(true);
    expect((await limiter.take(request)).allowed).toBe(false);
  });

  it("chooses Redis with REDIS_URL, applying its failure mode", async () => {
    const port = await freePort();
    const limiter = track(
      createRateLimiter(
        { redisUrl: `redis://127.0.0.1:${port}`, rateLimitFailureMode: "open" },
        manualClock(),
      ),
    );
    expect(await limiter.health()).toBe("unavailable");
    expect((await limiter.take({ key: bucket(), limit: 1, windowSeconds: 60, cost: 1 })).allowed).toBe(true);
  });
});
