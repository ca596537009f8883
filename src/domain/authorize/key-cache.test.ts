import { describe, expect, it } from "vitest";
import type { ApiKeyWithOrg } from "../api-keys/api-keys.types.ts";
import { createKeyCache } from "./key-cache.ts";

/**
 * The cache's reading policy, against a store whose reads the test releases one by one: which requests
 * share a read, which wait for one, and which are answered from the copy while it is refreshed. (The
 * store's own query is covered by the PostgreSQL tests; here only the order of reads matters.)
 */
function keyOf(name: string): ApiKeyWithOrg {
  return {
    id: `key_${name}`,
    orgId: "org_1",
    name,
    description: null,
    projectId: null,
    environment: "live",
    keyPrefix: "sk_live",
    lastFour: "abcd",
    keyHash: "hash",
    scopes: [],
    metadata: {},
    rateLimitOverrides: {},
    createdBy: null,
    createdAt: new Date(0),
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    rotatedFrom: null,
    orgStatus: "active",
    projectDeleted: false,
  };
}

function setUp() {
  let now = 1_000_000;
  let current = keyOf("v1");
  const reads: (() => void)[] = [];
  const release = async () => {
    reads.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
  };
  const cache = createKeyCache({
    store: {
      findByHash: () =>
        new Promise<ApiKeyWithOrg | undefined>((resolve) => {
          // What the store holds when the read is answered, as a database read sees its snapshot.
          reads.push(() => resolve(current));
        }),
    },
    clock: { now: () => new Date(now) },
    trusted: () => true,
    ttlMs: 30_000,
    refreshAheadMs: 5_000,
  });
  return {
    cache,
    reads,
    advance: (ms: number) => {
      now += ms;
    },
    change: (name: string) => {
      current = keyOf(name);
    },
    /** Answers the oldest read waiting. */
    release,
    /** The key found once and cached, as at the start of each of these stories. */
    cached: async () => {
      const first = cache.findByHash("h");
      await release();
      await first;
    },
  };
}

describe("key cache", () => {
  it("shares one read among the requests that miss the same key at once", async () => {
    const { cache, reads, release } = setUp();
    const all = Promise.all([cache.findByHash("h"), cache.findByHash("h"), cache.findByHash("h")]);
    expect(reads).toHaveLength(1);
    await release();
    expect((await all).map((k) => k?.name)).toEqual(["v1", "v1", "v1"]);
    expect(cache.peek("h")?.name).toBe("v1");
    expect(reads).toHaveLength(0);
  });

  it("refreshes a key in use before it expires, answering from the copy meanwhile", async () => {
    const { cache, reads, release, cached, advance, change } = setUp();
    await cached();
    advance(24_000);
    expect(cache.peek("h")?.name).toBe("v1");
    expect(reads).toHaveLength(0);

    change("v2");
    advance(2_000); // 4 s before expiry: in the refresh-ahead window
    expect(cache.peek("h")?.name).toBe("v1");
    expect(cache.peek("h")?.name).toBe("v1");
    expect(reads).toHaveLength(1); // one background read, shared
    await release();
    expect(cache.peek("h")?.name).toBe("v2");
    // The refreshed copy is trusted for a whole TTL from its read.
    advance(20_000);
    expect(cache.peek("h")?.name).toBe("v2");
    expect(reads).toHaveLength(0);
  });

  it("never answers from an expired copy: the request waits for the read", async () => {
    const { cache, reads, release, cached, advance, change } = setUp();
    await cached();
    change("v2");
    advance(30_000);
    expect(cache.peek("h")).toBeUndefined();
    const waiting = cache.findByHash("h");
    expect(reads).toHaveLength(1);
    await release();
    expect((await waiting)?.name).toBe("v2");
  });

  it("does not let a request after an invalidation join a read that began before it", async () => {
    const { cache, reads, release, change } = setUp();
    const before = cache.findByHash("h");
    expect(reads).toHaveLength(1);
    change("revoked");
    cache.forgetOrg("org_1");
    const after = cache.findByHash("h");
    expect(reads).toHaveLength(2);
    // The first read is answered before the change in the store is visible to it.
    change("v1");
    await release();
    change("revoked");
    await release();
    expect((await before)?.name).toBe("v1");
    expect((await after)?.name).toBe("revoked");
    // What the read from before the invalidation found was not stored.
    expect(cache.peek("h")?.name).toBe("revoked");
  });
});

describe("key cache bound", () => {
  it("drops the key read longest ago beyond maxKeys; a refreshed key counts as read at its refresh", async () => {
    let now = 1_000_000;
    const cache = createKeyCache({
      store: { findByHash: async (hash) => keyOf(hash) },
      clock: { now: () => new Date(now) },
      trusted: () => true,
      ttlMs: 30_000,
      refreshAheadMs: 5_000,
      maxKeys: 2,
    });
    await cache.findByHash("a");
    now += 1_000;
    await cache.findByHash("b");
    // A hit does not move its key (re-inserting on every request rebuilt the map's table: ADR 0004).
    expect(cache.peek("a")?.name).toBe("a");
    await cache.findByHash("c");
    expect(cache.peek("a")).toBeUndefined();
    expect(cache.peek("b")?.name).toBe("b");
    // "b" in its refresh-ahead window: read again in the background, which makes it the newest.
    now += 25_500;
    expect(cache.peek("b")?.name).toBe("b");
    await new Promise((resolve) => setImmediate(resolve));
    await cache.findByHash("d");
    expect(cache.peek("c")).toBeUndefined();
    expect(cache.peek("b")?.name).toBe("b");
    expect(cache.peek("d")?.name).toBe("d");
  });
});
