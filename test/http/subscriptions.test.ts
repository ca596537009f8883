import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syncCatalog } from "../../src/domain/catalog/catalog.service.ts";
import type { Catalog, PlanDefinition } from "../../src/domain/catalog/catalog.types.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type TestContext,
  uniqueName,
} from "../harness.ts";
import { testCatalog, testPlan } from "../plans.ts";

type SubscriptionBody = {
  id: string;
  org_id: string;
  plan: { key: string; version: number; name: string; tier: string };
  status: string;
  interval: string;
  billing_anchor_day: number;
  current_period_start: string;
  current_period_end: string;
  trial_end: string | null;
  cancel_at: string | null;
  cancel_at_period_end: boolean;
  canceled_at: string | null;
  seats: number;
};
type QuotaBody = { quota: string; limit: number | null; current: number; source: string };

function plan(key: string, overrides: Partial<PlanDefinition> = {}): PlanDefinition {
  return testPlan(key, {
    name: key[0]?.toUpperCase() + key.slice(1),
    price: { amountMinor: 2000, currency: "usd", interval: "month" },
    monthlyCredits: "1000",
    rateLimits: { requests: 60 },
    ...overrides,
  });
}

/** New organizations trial Pro for 14 days; a cancellation falls back to Free. */
const catalog: Catalog = testCatalog(
  [
    plan("free", { price: null, quotas: { projects: 1, api_keys: 3, datasets: 2 } }),
    plan("pro", { trialDays: 14, quotas: { projects: 10, api_keys: 20, datasets: 100 } }),
    plan("team", { quotas: { projects: null, api_keys: null, datasets: null } }),
  ],
  {
    categories: [{ key: "requests", description: "Every request" }],
    defaultPlan: "pro",
    fallbackPlan: "free",
  },
);

const clock = createManualClock(new Date("2027-01-31T10:00:00.000Z"));
let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ clock, catalog });
});
afterAll(() => t.close());

async function newOrg(at: string): Promise<string> {
  clock.set(new Date(at));
  const res = await t.request<{ id: string }>("POST", "/v1/organizations", { body: { name: uniqueName() } });
  expectStatus(res, 201);
  return res.body.id;
}

async function subscription(orgId: string): Promise<SubscriptionBody> {
  const res = await t.request<SubscriptionBody>("GET", `/v1/organizations/${orgId}/subscription`);
  expectStatus(res, 200);
  return res.body;
}

async function put(orgId: string, body: Record<string, unknown>): Promise<SubscriptionBody> {
  const res = await t.request<SubscriptionBody>("PUT", `/v1/organizations/${orgId}/subscription`, { body });
  expectStatus(res, 200);
  return res.body;
}

async function cancel(orgId: string, query = ""): Promise<SubscriptionBody> {
  const res = await t.request<SubscriptionBody>("DELETE", `/v1/organizations/${orgId}/subscription${query}`);
  expectStatus(res, 200);
  return res.body;
}

async function quotas(orgId: string): Promise<Record<string, QuotaBody>> {
  const res = await t.request<{ data: QuotaBody[] }>("GET", `/v1/organizations/${orgId}/quotas`);
  expectStatus(res, 200);
  return Object.fromEntries(res.body.data.map((q) => [q.quota, q]));
}

async function auditActions(orgId: string): Promise<string[]> {
  const res = await t.request<{ data: { action: string }[] }>(
    "GET",
    `/v1/organizations/${orgId}/audit-events?limit=100`,
  );
  expectStatus(res, 200);
  return res.body.data.map((e) => e.action);
}

describe("a new organization's subscription", () => {
  it("starts on the default plan in the same transaction, trialing until trial_end", async () => {
    const orgId = await newOrg("2027-01-31T10:00:00.000Z");
    const sub = await subscription(orgId);
    expect(sub).toMatchObject({
      org_id: orgId,
      plan: { key: "pro", version: 1, name: "Pro", tier: "pro" },
      status: "trialing",
      interval: "month",
      billing_anchor_day: 31,
      current_period_start: "2027-01-31T10:00:00.000Z",
      current_period_end: "2027-02-28T10:00:00.000Z",
      trial_end: "2027-02-14T10:00:00.000Z",
      cancel_at_period_end: false,
      seats: 1,
    });
    expect(await auditActions(orgId)).toContain("subscription.created");
  });

  it("becomes active on the same plan when the trial ends, on read without a sweep", async () => {
    const orgId = await newOrg("2027-01-31T10:00:00.000Z");
    clock.set(new Date("2027-02-14T09:59:59.000Z"));
    expect((await subscription(orgId)).status).toBe("trialing");
    clock.set(new Date("2027-02-14T10:00:00.000Z"));
    const sub = await subscription(orgId);
    expect(sub).toMatchObject({
      status: "active",
      plan: { key: "pro" },
      trial_end: "2027-02-14T10:00:00.000Z",
    });
    expect(await auditActions(orgId)).toContain("subscription.trial_ended");
  });

  it("anchors on Jan 31: the period ends Feb 28, then Mar 31", async () => {
    const orgId = await newOrg("2027-01-31T10:00:00.000Z");
    clock.set(new Date("2027-03-01T00:00:00.000Z"));
    const sub = await subscription(orgId);
    expect(sub.current_period_start).toBe("2027-02-28T10:00:00.000Z");
    expect(sub.current_period_end).toBe("2027-03-31T10:00:00.000Z");
    expect(sub.billing_anchor_day).toBe(31);
  });

  it("ends a Jan 31 period on Feb 29 in a leap year", async () => {
    const orgId = await newOrg("2028-01-31T10:00:00.000Z");
    expect((await subscription(orgId)).current_period_end).toBe("2028-02-29T10:00:00.000Z");
  });

  it("is created on first read for an organization that had none", async () => {
    const orgId = await newOrg("2027-05-10T00:00:00.000Z");
    await t.database.pool.query("delete from subscriptions where org_id = $1", [orgId]);
    const sub = await subscription(orgId);
    expect(sub).toMatchObject({ plan: { key: "pro" }, status: "trialing" });
    expect((await subscription(orgId)).id).toBe(sub.id);
  });
});

describe("changing the plan", () => {
  it("takes effect at once: the quotas follow the new plan", async () => {
    const orgId = await newOrg("2027-06-01T00:00:00.000Z");
    expect((await quotas(orgId)).projects?.limit).toBe(10);
    const sub = await put(orgId, { plan: "team" });
    // A plan change ends the trial: the new plan applies now.
    expect(sub).toMatchObject({ plan: { key: "team" }, status: "active" });
    expect((await quotas(orgId)).projects).toEqual({
      quota: "projects",
      limit: null,
      current: 0,
      source: "plan",
    });
    expect(await auditActions(orgId)).toContain("subscription.updated");
  });

  it("moves to a newer version of the same plan only when asked", async () => {
    const orgId = await newOrg("2027-06-01T00:00:00.000Z");
    await put(orgId, { plan: "team" });
    const edited: Catalog = {
      ...catalog,
      plans: catalog.plans.map((p) =>
        p.key === "team" ? { ...p, quotas: { ...p.quotas, projects: 500 } } : p,
      ),
    };
    await t.database.transactor.transaction((stores) =>
      syncCatalog(stores.planVersions, edited, clock.now()),
    );
    expect((await subscription(orgId)).plan).toMatchObject({ key: "team", version: 1 });
    expect((await put(orgId, { plan: "team" })).plan).toMatchObject({ key: "team", version: 2 });
    expect((await quotas(orgId)).projects?.limit).toBe(500);
  });

  it("starts a new period now when the interval changes, and sets seats", async () => {
    const orgId = await newOrg("2027-06-01T00:00:00.000Z");
    clock.set(new Date("2027-06-10T12:00:00.000Z"));
    const sub = await put(orgId, { interval: "year", seats: 5 });
    expect(sub).toMatchObject({
      interval: "year",
      seats: 5,
      billing_anchor_day: 10,
      current_period_start: "2027-06-10T12:00:00.000Z",
      current_period_end: "2028-06-10T12:00:00.000Z",
    });
  });

  it("refuses an unknown plan, unknown fields and bad seats with 400", async () => {
    const orgId = await newOrg("2027-06-01T00:00:00.000Z");
    for (const body of [
      { plan: "platinum" },
      { plan: "team", price: 1 },
      { seats: 0 },
      { interval: "week" },
    ]) {
      const res = await t.request<ProblemBody>("PUT", `/v1/organizations/${orgId}/subscription`, { body });
      expectStatus(res, 400);
      expect(res.body.code, res.text).toBe("validation_failed");
    }
  });
});

describe("cancelling", () => {
  it("holds the plan until the period ends, then the fallback plan applies", async () => {
    const orgId = await newOrg("2027-01-31T10:00:00.000Z");
    await put(orgId, { plan: "team" });
    const canceled = await cancel(orgId);
    expect(canceled).toMatchObject({
      plan: { key: "team" },
      status: "active",
      cancel_at_period_end: true,
      cancel_at: "2027-02-28T10:00:00.000Z",
    });
    clock.set(new Date("2027-02-28T09:59:59.999Z"));
    expect((await subscription(orgId)).plan.key).toBe("team");
    // Team's limit (unlimited, or 500 once a test above has edited the plan), not Free's.
    expect((await quotas(orgId)).projects?.limit).not.toBe(1);

    clock.set(new Date("2027-02-28T10:00:00.000Z"));
    const after = await subscription(orgId);
    expect(after).toMatchObject({
      plan: { key: "free" },
      status: "active",
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: "2027-01-31T10:00:00.000Z",
      current_period_start: "2027-02-28T10:00:00.000Z",
      current_period_end: "2027-03-31T10:00:00.000Z",
    });
    expect((await quotas(orgId)).projects?.limit).toBe(1);
    expect(await auditActions(orgId)).toEqual(
      expect.arrayContaining(["subscription.canceled", "subscription.cancellation_effective"]),
    );
    // Already on the fallback plan: nothing left to cancel.
    const again = await t.request<ProblemBody>("DELETE", `/v1/organizations/${orgId}/subscription`);
    expectStatus(again, 409);
    expect(again.body.code).toBe("invalid_state_transition");
  });

  it("ends a cancelled trial in the fallback plan at the trial's end", async () => {
    const orgId = await newOrg("2027-03-01T00:00:00.000Z");
    const canceled = await cancel(orgId);
    expect(canceled).toMatchObject({ status: "trialing", cancel_at: "2027-03-15T00:00:00.000Z" });
    clock.set(new Date("2027-03-16T00:00:00.000Z"));
    expect(await subscription(orgId)).toMatchObject({ plan: { key: "free" }, status: "active" });
  });

  it("is resumed by PUT {cancel_at_period_end: false}: the plan renews", async () => {
    const orgId = await newOrg("2027-03-01T00:00:00.000Z");
    await put(orgId, { plan: "team" });
    await cancel(orgId);
    const resumed = await put(orgId, { cancel_at_period_end: false });
    expect(resumed).toMatchObject({ cancel_at: null, cancel_at_period_end: false, canceled_at: null });
    clock.set(new Date("2027-04-02T00:00:00.000Z"));
    expect(await subscription(orgId)).toMatchObject({
      plan: { key: "team" },
      current_period_start: "2027-04-01T00:00:00.000Z",
      current_period_end: "2027-05-01T00:00:00.000Z",
    });
  });

  it("applies the fallback plan now with ?immediately=true", async () => {
    const orgId = await newOrg("2027-03-01T00:00:00.000Z");
    clock.set(new Date("2027-03-05T00:00:00.000Z"));
    const sub = await cancel(orgId, "?immediately=true");
    expect(sub).toMatchObject({
      plan: { key: "free" },
      status: "active",
      cancel_at_period_end: false,
      canceled_at: "2027-03-05T00:00:00.000Z",
      current_period_start: "2027-03-05T00:00:00.000Z",
    });
  });
});

describe("the sweep", () => {
  it("applies due transitions without anyone reading the subscription", async () => {
    const orgId = await newOrg("2027-07-31T00:00:00.000Z");
    await put(orgId, { plan: "team" });
    await cancel(orgId);
    const other = await newOrg("2027-07-31T00:00:00.000Z");
    clock.set(new Date("2027-09-01T00:00:00.000Z"));
    expect(await t.services.subscriptions.sweep()).toBeGreaterThanOrEqual(2);

    const stored = await t.database.stores.subscriptions.findByOrg(orgId);
    const fallback = await t.services.catalog.fallbackPlan();
    expect(stored?.planVersionId).toBe(fallback.id);
    expect(stored?.currentPeriodStart.toISOString()).toBe("2027-08-31T00:00:00.000Z");
    expect(stored?.currentPeriodEnd.toISOString()).toBe("2027-09-30T00:00:00.000Z");
    const trialed = await t.database.stores.subscriptions.findByOrg(other);
    expect(trialed?.status).toBe("active");
    expect(trialed?.currentPeriodEnd.toISOString()).toBe("2027-09-30T00:00:00.000Z");

    // Nothing is due any more.
    expect(await t.services.subscriptions.sweep()).toBe(0);
  });
});

describe("the organization view", () => {
  it("returns the organization with its plan, subscription and quotas in one read", async () => {
    const orgId = await newOrg("2027-10-01T00:00:00.000Z");
    const key = await t.createKey(orgId);
    for (const path of [`/v1/organizations/${orgId}`, "/v1/organization"]) {
      const res = await t.request<Record<string, unknown>>("GET", path, { key });
      expectStatus(res, 200);
      expect(res.body).toMatchObject({
        id: orgId,
        plan: { key: "pro", version: 1, name: "Pro", tier: "pro" },
        subscription: {
          status: "trialing",
          interval: "month",
          current_period_start: "2027-10-01T00:00:00.000Z",
          current_period_end: "2027-11-01T00:00:00.000Z",
          trial_end: "2027-10-15T00:00:00.000Z",
          cancel_at_period_end: false,
        },
        quotas: expect.arrayContaining([
          { quota: "api_keys", limit: 20, current: 1, source: "plan" },
          { quota: "datasets", limit: 100, current: 0, source: "plan" },
        ]),
      });
    }
  });
});
