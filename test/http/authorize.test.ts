import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ApiKeysStore } from "../../src/domain/api-keys/api-keys.store.ts";
import { createAuthorizeService } from "../../src/domain/authorize/authorize.service.ts";
import type { Catalog, PlanDefinition } from "../../src/domain/catalog/catalog.types.ts";
import { createMemoryRateLimiter } from "../../src/infra/rate-limiter.memory.ts";
import { generateKey } from "../../src/lib/api-key-format.ts";
import { systemClock } from "../../src/lib/clock.ts";
import { createServices } from "../../src/services.ts";
import { openDatabase } from "../../src/store/db.ts";
import { createOrgChangeListener } from "../../src/store/org-changes.pg.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ManualClock,
  PREFIXES,
  type TestContext,
  uniqueName,
} from "../harness.ts";
import { testCatalog, testPlan } from "../plans.ts";

type Decision = {
  allowed: boolean;
  reason: string | null;
  org_id: string | null;
  project_id: string | null;
  key_id: string | null;
  scopes: string[] | null;
  plan: { key: string; version: number; tier: string } | null;
  limit: { category: string; limit: number; remaining: number; reset_at: string } | null;
  credits: {
    required: string;
    debited: boolean;
    balance: string | null;
    transaction_id: string | null;
  } | null;
  headers: Record<string, string>;
};

function plan(
  key: string,
  monthlyCredits: string | null,
  rateLimits: Record<string, number>,
): PlanDefinition {
  return testPlan(key, { tier: `${key}-tier`, monthlyCredits, rateLimits });
}

const catalog: Catalog = testCatalog(
  [
    plan("small", "100", { metadata: 1000, search: 5, upload: 10 }),
    plan("custom", null, { metadata: 1000, search: 5 }),
  ],
  {
    categories: [
      { key: "metadata", description: "CRUD" },
      { key: "search", description: "Queries" },
      { key: "upload", description: "Uploads" },
    ],
    // Half a dollar a credit: spending limits may be set in dollars.
    creditPrice: { amount: "0.5", currency: "usd" },
  },
);

let t: TestContext;
let clock: ManualClock;
beforeAll(async () => {
  clock = createManualClock(new Date("2031-06-01T12:00:00.000Z"));
  t = await createTestContext({ catalog, clock, rateLimiter: createMemoryRateLimiter({ clock }) });
});
afterAll(() => t.close());

async function authorize(body: Record<string, unknown>, key?: string): Promise<Decision> {
  const res = await t.request<Decision>("POST", "/v1/authorize", { body, ...(key ? { key } : {}) });
  expectStatus(res, 200);
  return res.body;
}

async function createKey(
  orgId: string,
  body: Record<string, unknown> = {},
): Promise<{ key: string; id: string }> {
  const res = await t.request<{ key: string; id: string }>("POST", `/v1/organizations/${orgId}/api-keys`, {
    body: { name: uniqueName("key"), ...body },
  });
  expectStatus(res, 201);
  return res.body;
}

async function createProject(orgId: string): Promise<string> {
  const res = await t.request<{ id: string }>("POST", `/v1/organizations/${orgId}/projects`, {
    body: { name: uniqueName("prj") },
  });
  expectStatus(res, 201);
  return res.body.id;
}

const refusedWithoutIdentity = {
  allowed: false,
  org_id: null,
  project_id: null,
  key_id: null,
  scopes: null,
  plan: null,
  limit: null,
  credits: null,
  headers: {},
};

describe("POST /v1/authorize", () => {
  it("allows a good key, counts the request and answers headers ready to forward", async () => {
    const org = await t.createOrg();
    const { key, id } = await createKey(org.id, { scopes: ["orgs:read", "usage:write"] });
    const d = await authorize({ key, category: "search", scope: "usage:write" });
    expect(d).toEqual({
      allowed: true,
      reason: null,
      org_id: org.id,
      project_id: null,
      key_id: id,
      scopes: ["orgs:read", "usage:write"],
      plan: { key: "small", version: 1, tier: "small-tier" },
      limit: { category: "search", limit: 5, remaining: 4, reset_at: expect.any(String) },
      credits: null,
      headers: {
        "RateLimit-Policy": '"search";q=5;w=60',
        RateLimit: '"search";r=4;t=12',
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "4",
        "X-RateLimit-Reset": String(Math.ceil(new Date(d.limit?.reset_at ?? 0).getTime() / 1000)),
      },
    });
  });

  it("counts `cost` requests, refuses with rate_limited and Retry-After once the limit is used up", async () => {
    const org = await t.createOrg();
    const { key } = await createKey(org.id);
    const first = await authorize({ key, category: "search", cost: 4 });
    expect(first.limit).toMatchObject({ limit: 5, remaining: 1 });
    const refused = await authorize({ key, category: "search", cost: 2 });
    expect(refused).toMatchObject({ allowed: false, reason: "rate_limited", org_id: org.id });
    expect(refused.limit).toMatchObject({ limit: 5, remaining: 0 });
    expect(Number(refused.headers["Retry-After"])).toBeGreaterThanOrEqual(1);
    expect(refused.headers["X-RateLimit-Remaining"]).toBe("0");
    // The last request still fits; the bucket is per org and category, shared by every key of the org.
    const other = await createKey(org.id);
    expect((await authorize({ key: other.key, category: "search" })).allowed).toBe(true);
    expect((await authorize({ key, category: "search" })).reason).toBe("rate_limited");
    // Another category has a bucket of its own.
    expect((await authorize({ key, category: "upload" })).allowed).toBe(true);
    // The window refills with time.
    clock.advance(60_000);
    expect((await authorize({ key, category: "search", cost: 5 })).allowed).toBe(true);
  });

  it("shares the bucket with Orgplane's own API middleware", async () => {
    const org = await t.createOrg();
    const { key } = await createKey(org.id, { rate_limit_overrides: { metadata: 3 } });
    expect((await authorize({ key, category: "metadata", cost: 2 })).limit?.remaining).toBe(1);
    expectStatus(await t.request("GET", "/v1/organization", { key }), 200);
    expectStatus(await t.request("GET", "/v1/organization", { key }), 429);
    expect((await authorize({ key, category: "metadata" })).reason).toBe("rate_limited");
  });

  it("applies the most specific limit: key > project > org > plan", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const limitOf = async (key: string) => (await authorize({ key, category: "upload" })).limit?.limit;
    const plain = await createKey(org.id);
    const inProject = await createKey(org.id, { project_id: projectId, scopes: ["usage:write"] });
    const withOverride = await createKey(org.id, {
      project_id: projectId,
      scopes: ["usage:write"],
      rate_limit_overrides: { upload: 40 },
    });
    expect(await limitOf(plain.key)).toBe(10);
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}/rate-limits`, {
        body: { rate_limits: { upload: 20 } },
      }),
      200,
    );
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}/rate-limits?project_id=${projectId}`, {
        body: { rate_limits: { upload: 30 } },
      }),
      200,
    );
    expect(await limitOf(plain.key)).toBe(20);
    expect(await limitOf(inProject.key)).toBe(30);
    const withKey = await authorize({ key: withOverride.key, category: "upload" });
    expect(withKey).toMatchObject({ allowed: true, project_id: projectId, limit: { limit: 40 } });
  });

  it("debits `credits` from the ledger last, exactly, and refuses what the balance cannot cover", async () => {
    const org = await t.createOrg();
    const { key } = await createKey(org.id);
    // The small plan grants 100 credits a period.
    const first = await authorize({ key, category: "metadata", credits: "60.5" });
    expect(first).toMatchObject({
      allowed: true,
      credits: { required: "60.5", debited: true, balance: "39.5", transaction_id: expect.any(String) },
    });
    const entry = await t.database.stores.credits.findEntry(org.id, first.credits?.transaction_id ?? "");
    expect(entry).toMatchObject({ type: "debit", amount: "-60.5", source: "authorize" });
    const beyond = await authorize({ key, category: "metadata", credits: "40" });
    expect(beyond).toMatchObject({
      allowed: false,
      reason: "insufficient_credits",
      credits: { required: "40", debited: false, balance: "39.5", transaction_id: null },
    });
    // Zero credits: allowed, nothing debited.
    expect(await authorize({ key, category: "metadata", credits: "0" })).toMatchObject({
      allowed: true,
      credits: { required: "0", debited: false, balance: null },
    });
    // A refusal before the debit (scope) spends nothing.
    const scoped = await createKey(org.id, { scopes: ["orgs:read"] });
    const refused = await authorize({
      key: scoped.key,
      category: "metadata",
      scope: "usage:write",
      credits: "1",
    });
    expect(refused).toMatchObject({ allowed: false, reason: "scope_missing", credits: null });
    expect((await t.services.credits.get(org.id)).account.balance).toBe("39.5");
  });

  it("judges a hard limit set in currency at the catalog's credit price, in the debit itself", async () => {
    const org = await t.createOrg({ currency: "usd" });
    const { key } = await createKey(org.id);
    const set = await t.request("PUT", `/v1/organizations/${org.id}/spending-limits`, {
      body: { unit: "currency", soft_limit: null, hard_limit: "5", hard_limit_action: "block" },
    });
    expectStatus(set, 200);
    // $5 at $0.50 a credit: 10 credits.
    expect(await authorize({ key, category: "metadata", credits: "6" })).toMatchObject({ allowed: true });
    expect(await authorize({ key, category: "metadata", credits: "6" })).toMatchObject({
      allowed: false,
      reason: "spending_limit_reached",
    });
    expect(await authorize({ key, category: "metadata", credits: "4" })).toMatchObject({ allowed: true });
    clock.advance(1500);
    expect(await authorize({ key, category: "metadata" })).toMatchObject({
      reason: "spending_limit_reached",
    });
    // An organization in another currency cannot set limits in currency: credits are priced in USD.
    const euro = await t.createOrg({ currency: "eur" });
    const refused = await t.request<{ code: string }>("PUT", `/v1/organizations/${euro.id}/spending-limits`, {
      body: { unit: "currency", hard_limit: "5" },
    });
    expectStatus(refused, 422);
    expect(refused.body.code).toBe("spending_unit_unsupported");
  });

  it("answers spending_limit_reached once a blocking hard limit is reached, and debits no further", async () => {
    const org = await t.createOrg();
    const { key } = await createKey(org.id);
    const set = await t.request("PUT", `/v1/organizations/${org.id}/spending-limits`, {
      body: { unit: "credits", soft_limit: null, hard_limit: "10", hard_limit_action: "block" },
    });
    expectStatus(set, 200);
    expect(await authorize({ key, category: "metadata", credits: "6" })).toMatchObject({ allowed: true });
    // 6 + 6 > 10: refused in the debit's own statement, with the balance untouched.
    const over = await authorize({ key, category: "metadata", credits: "6" });
    expect(over).toMatchObject({
      allowed: false,
      reason: "spending_limit_reached",
      credits: { debited: false, balance: "94" },
    });
    expect(await authorize({ key, category: "metadata", credits: "4" })).toMatchObject({ allowed: true });
    // Used 10 of 10: refused before counting, credits asked or not.
    clock.advance(1500); // past the one-second cache of the spending state
    const blocked = await authorize({ key, category: "metadata" });
    expect(blocked).toMatchObject({ allowed: false, reason: "spending_limit_reached", limit: null });
    expect((await t.services.credits.get(org.id)).account.balance).toBe("90");
  });

  it("refuses a key without the scope asked for, before counting it", async () => {
    const org = await t.createOrg();
    const { key, id } = await createKey(org.id, { scopes: ["orgs:read"] });
    const d = await authorize({ key, category: "search", scope: "usage:write", cost: 5 });
    expect(d).toMatchObject({
      allowed: false,
      reason: "scope_missing",
      key_id: id,
      limit: null,
      headers: {},
    });
    expect((await authorize({ key, category: "search", cost: 5 })).allowed).toBe(true);
  });

  it("answers key_not_found for unknown, malformed and foreign keys and keys of deleted organizations", async () => {
    const unknown = generateKey(PREFIXES.orgKeyPrefix, "live");
    expect(await authorize({ key: unknown, category: "search" })).toEqual({
      ...refusedWithoutIdentity,
      reason: "key_not_found",
    });
    const malformed = `${unknown.slice(0, -1)}${unknown.endsWith("A") ? "B" : "A"}`;
    expect((await authorize({ key: malformed, category: "search" })).reason).toBe("key_not_found");
    expect((await authorize({ key: "not a key", category: "search" })).reason).toBe("key_not_found");
    expect((await authorize({ key: t.operatorKey, category: "search" })).reason).toBe("key_not_found");

    const org = await t.createOrg();
    const { key } = await createKey(org.id);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}`), 200);
    expect(await authorize({ key, category: "search" })).toEqual({
      ...refusedWithoutIdentity,
      reason: "key_not_found",
    });
  });

  it("answers key_revoked, key_expired and organization_suspended", async () => {
    const org = await t.createOrg();
    const revoked = await createKey(org.id);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${revoked.id}`), 200);
    expect(await authorize({ key: revoked.key, category: "search" })).toMatchObject({
      allowed: false,
      reason: "key_revoked",
      key_id: revoked.id,
      org_id: org.id,
      limit: null,
      headers: {},
    });

    const expiring = await createKey(org.id, {
      expires_at: new Date(clock.now().getTime() + 60_000).toISOString(),
    });
    expect((await authorize({ key: expiring.key, category: "metadata" })).allowed).toBe(true);
    clock.advance(61_000);
    expect(await authorize({ key: expiring.key, category: "metadata" })).toMatchObject({
      allowed: false,
      reason: "key_expired",
      key_id: expiring.id,
    });

    const good = await createKey(org.id);
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`, { body: {} }), 200);
    expect(await authorize({ key: good.key, category: "metadata" })).toMatchObject({
      allowed: false,
      reason: "organization_suspended",
      org_id: org.id,
    });
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/unsuspend`, { body: {} }), 200);
    expect((await authorize({ key: good.key, category: "metadata" })).allowed).toBe(true);
  });

  it("answers 400 for an unknown category or a bad cost, and 403 to anyone but the operator", async () => {
    const org = await t.createOrg();
    const { key } = await createKey(org.id);
    for (const body of [
      { key, category: "nope" },
      { key, category: "search", cost: 0 },
      { key, category: "search", cost: 1.5 },
      { key, category: "search", cost: 1_000_001 },
      { key, category: "search", credits: "-1" },
      { key, category: "search", scope: "nope:read" },
      { category: "search" },
    ]) {
      const res = await t.request<{ code: string }>("POST", "/v1/authorize", { body });
      expectStatus(res, 400);
      expect(res.body.code).toBe("validation_failed");
    }
    const res = await t.request<{ code: string }>("POST", "/v1/authorize", {
      key,
      body: { key, category: "search" },
    });
    expectStatus(res, 403);
  });

  it("refuses a malformed key without reading the database", async () => {
    const reads: string[] = [];
    const keys: Pick<ApiKeysStore, "findByHash"> = {
      async findByHash(hash) {
        reads.push(hash);
        return t.database.stores.apiKeys.findByHash(hash);
      },
    };
    const service = createAuthorizeService({
      keys,
      rateLimits: t.services.rateLimits,
      keyUsage: { record: () => undefined },
      credits: t.services.credits,
      spending: t.services.spendingLimits,
      prefixes: PREFIXES,
      clock,
    });
    const good = generateKey(PREFIXES.orgKeyPrefix, "live");
    const malformed = `${good.slice(0, -1)}${good.endsWith("A") ? "B" : "A"}`;
    const d = await service.authorize({
      key: malformed,
      category: "search",
      cost: 1,
      scope: undefined,
      credits: undefined,
    });
    expect(d).toMatchObject({ allowed: false, reason: "key_not_found" });
    expect(reads).toEqual([]);
    await service.authorize({ key: good, category: "search", cost: 1, scope: undefined, credits: undefined });
    expect(reads).toHaveLength(1);
  });
});

describe("the key cache of a process that listens to organization changes", () => {
  /** Another process on the same database: its own pool, counting every connection it takes. */
  async function listeningProcess() {
    const database = openDatabase({ url: t.databaseUrl, poolMax: 5, onPoolError: () => {} });
    let acquired = 0;
    database.pool.on("acquire", () => {
      acquired += 1;
    });
    const listener = createOrgChangeListener(database.pool, () => {});
    const services = createServices(database, {
      clock: systemClock,
      prefixes: PREFIXES,
      identity: undefined,
      catalog: t.catalog,
      rateLimiter: createMemoryRateLimiter({ clock: systemClock }),
      orgChanges: listener,
    });
    await services.authorize.start();
    expect(listener.listening()).toBe(true);
    return {
      authorize: (key: string) =>
        services.authorize.authorize({
          key,
          category: "metadata",
          cost: 1,
          scope: undefined,
          credits: undefined,
        }),
      acquired: () => acquired,
      cachedKeys: () => services.authorize.cachedKeys(),
      async close() {
        await services.authorize.stop();
        await database.close();
      },
    };
  }

  /** Polls `check` for at most `boundMs` (the acceptance figure); answers whether it turned true in time. */
  async function within(boundMs: number, check: () => Promise<boolean>): Promise<boolean> {
    const deadline = performance.now() + boundMs;
    while (performance.now() < deadline) {
      if (await check()) {
        return true;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return false;
  }

  it("answers a repeat authorize without any PostgreSQL query", async () => {
    const other = await listeningProcess();
    try {
      const org = await t.createOrg();
      const { key } = await createKey(org.id);
      expect((await other.authorize(key)).allowed).toBe(true);
      const before = other.acquired();
      for (let i = 0; i < 5; i++) {
        expect((await other.authorize(key)).allowed).toBe(true);
      }
      expect(other.acquired() - before).toBe(0);
      expect(other.cachedKeys()).toBeGreaterThanOrEqual(1);
    } finally {
      await other.close();
    }
  });

  it("drops a key revoked, and an organization suspended, elsewhere within one second", async () => {
    const other = await listeningProcess();
    try {
      const org = await t.createOrg();
      const revoked = await createKey(org.id);
      const kept = await createKey(org.id);
      expect((await other.authorize(revoked.key)).allowed).toBe(true);
      expect((await other.authorize(kept.key)).allowed).toBe(true);
      expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${revoked.id}`), 200);
      expect(
        await within(1000, async () => (await other.authorize(revoked.key)).reason === "key_revoked"),
      ).toBe(true);
      expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`, { body: {} }), 200);
      expect(
        await within(1000, async () => (await other.authorize(kept.key)).reason === "organization_suspended"),
      ).toBe(true);
    } finally {
      await other.close();
    }
  });

  it("stops trusting the cache when the listener loses its connection, and clears it on reconnect", async () => {
    const other = await listeningProcess();
    try {
      const org = await t.createOrg();
      const { key } = await createKey(org.id);
      expect((await other.authorize(key)).allowed).toBe(true);
      expect(other.cachedKeys()).toBe(1);
      // Cut the listening connection from the server side, as a failover or a restart would.
      await t.database.pool.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where query = 'listen orgplane_org_changes' and datname = current_database()",
      );
      expect(await within(1000, async () => other.cachedKeys() === 0)).toBe(true);
      // Reconnected a second later: the cache fills again and invalidation works as before.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect((await other.authorize(key)).allowed).toBe(true);
      expect(other.cachedKeys()).toBe(1);
    } finally {
      await other.close();
    }
  });
});
