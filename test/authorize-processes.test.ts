import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Fleet, startFleet } from "./fleet.ts";
import { api } from "./process.ts";

/**
 * Two real server processes on one PostgreSQL (and one Redis when TEST_REDIS_URL is set), each caching keys
 * for POST /v1/authorize: a revocation or a suspension through one is seen by the other within one second
 * (the acceptance figure, and the only timing asserted), and with Redis the two share one limit exactly.
 */

const REDIS_URL = process.env.TEST_REDIS_URL === "" ? undefined : process.env.TEST_REDIS_URL;
if (REDIS_URL === undefined) {
  process.stderr.write(
    "\n!!! TEST_REDIS_URL is not set: the shared-limit part of test/authorize-processes.test.ts (1,000 " +
      "authorize calls across two processes, exactly 100 allowed) is SKIPPED. Set " +
      "TEST_REDIS_URL=redis://127.0.0.1:6379 to run it. !!!\n",
  );
}

/** Revocation and suspension must reach the other process within this bound. */
const PROPAGATION_BOUND_MS = 1000;

let fleet: Fleet;
let portA: number;
let portB: number;
let operatorKey: string;

beforeAll(async () => {
  // Both on the same database (and Redis, when set): A migrates and writes the operator key, then B starts.
  fleet = await startFleet("authz", 2, REDIS_URL === undefined ? {} : { REDIS_URL });
  [portA = 0, portB = 0] = fleet.ports;
  ({ operatorKey } = fleet);
}, 120_000);

afterAll(() => fleet?.close(), 60_000);

async function createOrgWithKey(name: string): Promise<{ orgId: string; key: string; keyId: string }> {
  const org = await api(portA, "POST", "/v1/organizations", operatorKey, { name });
  expect(org.status, org.text).toBe(201);
  const orgId = String(org.body.id);
  const created = await api(portA, "POST", `/v1/organizations/${orgId}/api-keys`, operatorKey, { name: "k" });
  expect(created.status, created.text).toBe(201);
  return { orgId, key: String(created.body.key), keyId: String(created.body.id) };
}

async function authorize(port: number, key: string, category = "metadata") {
  const res = await api(port, "POST", "/v1/authorize", operatorKey, { key, category });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Polls B for at most `PROPAGATION_BOUND_MS`; answers whether `reason` appeared within the bound. */
async function deniedWithin(port: number, key: string, reason: string): Promise<boolean> {
  const deadline = performance.now() + PROPAGATION_BOUND_MS;
  while (performance.now() < deadline) {
    if ((await authorize(port, key)).reason === reason) {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return false;
}

describe("POST /v1/authorize on two server processes sharing one database", () => {
  it("sees a key revoked through A as key_revoked on B within one second", async () => {
    const { orgId, key, keyId } = await createOrgWithKey("Authorize Revocation Inc");
    // B has the key cached now: only the signal from A can make it refuse it.
    expect((await authorize(portB, key)).allowed).toBe(true);
    expect((await authorize(portB, key)).allowed).toBe(true);
    const revoked = await api(portA, "DELETE", `/v1/organizations/${orgId}/api-keys/${keyId}`, operatorKey);
    expect(revoked.status, revoked.text).toBe(200);
    expect(await deniedWithin(portB, key, "key_revoked")).toBe(true);
    expect((await authorize(portA, key)).reason).toBe("key_revoked");
  });

  it("sees an organization suspended through A as organization_suspended on B within one second", async () => {
    const { orgId, key } = await createOrgWithKey("Authorize Suspension Inc");
    expect((await authorize(portB, key)).allowed).toBe(true);
    expect((await authorize(portB, key)).allowed).toBe(true);
    const suspended = await api(portA, "POST", `/v1/organizations/${orgId}/suspend`, operatorKey, {});
    expect(suspended.status, suspended.text).toBe(200);
    expect(await deniedWithin(portB, key, "organization_suspended")).toBe(true);
  });

  it.skipIf(REDIS_URL === undefined)(
    "admits exactly the 100 requests of a limit of 100 among 1,000 parallel calls across both processes (plus any GCRA refill of a burst outlasting 600 ms)",
    async () => {
      const { orgId, key } = await createOrgWithKey("Authorize Exactness Inc");
      const set = await api(portA, "PATCH", `/v1/organizations/${orgId}/rate-limits`, operatorKey, {
        rate_limits: { search: 100 },
      });
      expect(set.status, set.text).toBe(200);
      // Both processes have the key and the limits cached, so the burst is counted, not read from disk.
      for (const port of [portA, portB]) {
        expect((await authorize(port, key)).allowed).toBe(true);
      }
      // 1,000 calls through 100 concurrent workers (50 per process) on kept-alive connections: the burst
      // should end within GCRA's 600 ms emission interval, so no refilled request can be admitted.
      const decisions: Record<string, unknown>[] = [];
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 100 }, async (_, worker) => {
          while (next < 1000) {
            next += 1;
            decisions.push(await authorize(worker % 2 === 0 ? portA : portB, key, "search"));
          }
        }),
      );
      const burstMs = performance.now() - started;
      expect(decisions).toHaveLength(1000);
      // A Redis call slower than the limiter's 50 ms budget is answered by RATE_LIMIT_FAILURE_MODE (closed:
      // refused as rate_limiter_unavailable) and may still count on the server (docs/rate-limits.md); on a
      // loaded 2-core machine a few happen, and the answers say how many.
      const timeouts = decisions.filter((d) => d.reason === "rate_limiter_unavailable").length;
      const allowed = decisions.filter((d) => d.allowed === true);
      const remaining = allowed
        .map((d) => (d.limit as { remaining: number }).remaining)
        .sort((x, y) => y - x);
      const nonZero = remaining.filter((r) => r > 0);
      const zeros = remaining.length - nonZero.length;
      // GCRA refills one request every 600 ms at 100 a minute, so a burst that lasts longer may see a
      // refilled request admitted, always with 0 left; within 600 ms none.
      const refills = Math.floor(burstMs / 600);
      const context = `burst of ${Math.round(burstMs)} ms, ${timeouts} Redis timeout(s)`;
      // No slot is ever given twice across the two processes: the Lua script decides atomically.
      expect(new Set(nonZero).size, context).toBe(nonZero.length);
      expect(zeros, context).toBeLessThanOrEqual(1 + refills);
      process.stderr.write(`authorize exactness: ${context}, ${allowed.length} allowed\n`);
      if (timeouts === 0) {
        // Exactly the 100 of the full bucket, each once: 99 left, 98 left, … 0 left.
        expect(nonZero, context).toEqual(Array.from({ length: 99 }, (_, i) => 99 - i));
        expect(zeros, context).toBeGreaterThanOrEqual(1);
        if (refills === 0) {
          expect(allowed, context).toHaveLength(100);
        }
      } else {
        process.stderr.write(
          `\n!!! authorize exactness: ${context}; each may have used a slot without admitting a request !!!\n`,
        );
        expect(allowed.length, context).toBeGreaterThanOrEqual(100 - timeouts);
        expect(allowed.length, context).toBeLessThanOrEqual(100 + refills);
      }
      expect(
        decisions.filter(
          (d) => d.allowed !== true && d.reason !== "rate_limited" && d.reason !== "rate_limiter_unavailable",
        ),
      ).toEqual([]);
    },
    60_000,
  );
});
