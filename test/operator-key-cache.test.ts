import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newOperatorKey } from "../src/domain/api-keys/api-keys.service.ts";
import { createAuthenticator, OPERATOR_KEY_CACHE_MS } from "../src/domain/auth/authenticator.ts";
import { systemClock } from "../src/lib/clock.ts";
import { REFRESH_AHEAD_MS } from "../src/lib/single-flight.ts";
import { createTestContext, PREFIXES, type TestContext } from "./harness.ts";

/**
 * The operator key's one-second trust (src/domain/auth/authenticator.ts), against PostgreSQL: the operator
 * calls authorize without pause, so its key is read again in the background before its copy expires, and
 * its requests never wait for that read; a revoked key is still refused within the second.
 */
describe("operator key cache", () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext();
  });
  afterAll(async () => {
    await ctx.close();
  });

  function countingAuthenticator() {
    const { stores } = ctx.database;
    let reads = 0;
    const authenticator = createAuthenticator({
      stores: {
        ...stores,
        operatorKeys: {
          ...stores.operatorKeys,
          findByHash: (hash: string) => {
            reads += 1;
            return stores.operatorKeys.findByHash(hash);
          },
        },
      },
      clock: systemClock,
      prefixes: PREFIXES,
      identity: undefined,
      keyUsage: { record: () => {} },
    });
    return { authenticator, reads: () => reads };
  }

  it("is read once a second while in use, ahead of expiry, and refused within the second once revoked", async () => {
    const { key, plaintext } = newOperatorKey(PREFIXES.operatorKeyPrefix, "busy", systemClock);
    await ctx.database.stores.operatorKeys.insert(key);
    ctx.trackSecret(plaintext);
    const { authenticator, reads } = countingAuthenticator();

    const firstReadAt = performance.now();
    expect(await authenticator.authenticate(plaintext)).toMatchObject({ kind: "operator", id: key.id });
    expect(reads()).toBe(1);
    await Promise.all(Array.from({ length: 20 }, () => authenticator.authenticate(plaintext)));
    expect(reads()).toBe(1);

    // Inside the copy's last REFRESH_AHEAD_MS: answered from it, and one read starts behind it.
    await sleep(OPERATOR_KEY_CACHE_MS - REFRESH_AHEAD_MS / 2 - (performance.now() - firstReadAt));
    const answers = await Promise.all(Array.from({ length: 5 }, () => authenticator.authenticate(plaintext)));
    expect(answers.every((p) => p.kind === "operator")).toBe(true);
    expect(reads()).toBe(2);
    // The copy the refresh stored outlives the first one's second: no request waits at its expiry.
    await sleep(OPERATOR_KEY_CACHE_MS - (performance.now() - firstReadAt) + 50);
    expect(await authenticator.authenticate(plaintext)).toMatchObject({ kind: "operator" });
    expect(reads()).toBe(2);

    // Revoked: refused by the time every copy read before the revocation has expired.
    await ctx.database.stores.operatorKeys.revoke(key.id, new Date());
    const revokedAt = performance.now();
    let refusedAfter: number | undefined;
    while (performance.now() - revokedAt < OPERATOR_KEY_CACHE_MS + 500) {
      const outcome = await authenticator.authenticate(plaintext).then(
        () => "accepted",
        (err: unknown) => (err instanceof Error ? err.message : String(err)),
      );
      if (outcome !== "accepted") {
        expect(outcome).toMatch(/not a valid API key/);
        refusedAfter = performance.now() - revokedAt;
        break;
      }
      await sleep(20);
    }
    expect(refusedAfter).toBeDefined();
    // Every copy was read before the revocation and is trusted for at most OPERATOR_KEY_CACHE_MS from
    // that read; the loop's own step and a read's duration are the slack.
    expect(refusedAfter).toBeLessThanOrEqual(OPERATOR_KEY_CACHE_MS + 100);
  });
});
