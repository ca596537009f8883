import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog, PlanDefinition } from "../../src/domain/catalog/catalog.types.ts";
import { createTestContext, expectStatus, type ListBody, type TestContext } from "../harness.ts";
import { testCatalog, testPlan } from "../plans.ts";

function plan(key: string, monthlyCredits: string | null): PlanDefinition {
  return testPlan(key, { monthlyCredits });
}

const catalog: Catalog = testCatalog(
  [
    { ...plan("free", "100"), autoUpgrade: [{ whenBalanceAtLeast: "5000", plan: "pro" }] },
    plan("pro", "1000"),
  ],
  { categories: [{ key: "metadata", description: "CRUD" }] },
);

type Grant = {
  id: string;
  object: string;
  source: string;
  amount: string;
  remaining: string;
  priority: number;
  expires_at: string | null;
  reference: string | null;
  transaction_id?: string;
};
type Credits = {
  object: string;
  balance: string;
  overdraft: string;
  overdrawn: string;
  grants: Grant[];
  period: { start: string; end: string; allocation: string | null; used: string };
  burn_rate: string;
  estimated_days_remaining: string | null;
};
type Transaction = {
  id: string;
  type: string;
  amount: string;
  balance_after: string;
  reverses_id: string | null;
  reason: string | null;
  actor_type: string;
};
type Problem = {
  code: string;
  status: number;
  grant_id?: string;
  errors?: { path: string; message: string }[];
};

describe("credits API", () => {
  let t: TestContext;

  beforeAll(async () => {
    t = await createTestContext({ catalog });
  });
  afterAll(async () => {
    await t?.close();
  });

  const path = (orgId: string, rest = "") => `/v1/organizations/${orgId}/credits${rest}`;

  it("GET shows the period's allocation, the grants and the figures", async () => {
    const org = await t.createOrg();
    const res = await t.request<Credits>("GET", path(org.id));
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      object: "credits",
      balance: "100",
      overdraft: "0",
      overdrawn: "0",
      burn_rate: "0",
      estimated_days_remaining: null,
      period: { allocation: "100", used: "0" },
    });
    expect(res.body.grants).toHaveLength(1);
    expect(res.body.grants[0]).toMatchObject({ source: "plan_allocation", amount: "100", remaining: "100" });
    expect(res.body.grants[0]?.expires_at).toBe(res.body.period.end);

    await t.services.credits.debit(org.id, "14", { source: "usage" });
    const after = await t.request<Credits>("GET", path(org.id));
    expect(after.body).toMatchObject({ balance: "86", burn_rate: "2", estimated_days_remaining: "43" });
    expect(after.body.period.used).toBe("14");
  });

  it("reads need billing:read: an org key with it, owner, admin and billing members; not a viewer", async () => {
    const org = await t.createOrg();
    expectStatus(
      await t.request("GET", path(org.id), { key: await t.createKey(org.id, ["billing:read"]) }),
      200,
    );
    const noScope = await t.request<Problem>("GET", path(org.id), {
      key: await t.createKey(org.id, ["orgs:read"]),
    });
    expectStatus(noScope, 403);
    expect(noScope.body.code).toBe("insufficient_scope");
    for (const role of ["owner", "admin", "billing"] as const) {
      const { token } = await t.createMember(org.id, role);
      expectStatus(await t.request("GET", path(org.id, "/transactions"), { key: token }), 200);
    }
    const viewer = await t.createMember(org.id, "viewer");
    expectStatus(await t.request("GET", path(org.id), { key: viewer.token }), 403);
  });

  it("spending limits in currency are refused while the catalog prices no credit", async () => {
    const org = await t.createOrg();
    const res = await t.request<{ code: string; detail: string }>(
      "PUT",
      `/v1/organizations/${org.id}/spending-limits`,
      { body: { unit: "currency", hard_limit: "100" } },
    );
    expectStatus(res, 422);
    expect(res.body.code).toBe("spending_unit_unsupported");
    expect(res.body.detail).toContain("credit_price");
  });

  it("another organization's credits and transactions are a 404", async () => {
    const a = await t.createOrgWithKey();
    const b = await t.createOrg();
    const grant = await t.request<Grant>("POST", path(b.id, "/grants"), {
      body: { amount: "5", source: "purchase" },
    });
    expectStatus(grant, 201);
    expectStatus(await t.request("GET", path(b.id), { key: a.key }), 404);
    expectStatus(await t.request("GET", path(b.id, "/transactions"), { key: a.key }), 404);
    // The operator naming the wrong org for a transaction: 404 too.
    const reversed = await t.request<Problem>(
      "POST",
      path(a.org.id, `/transactions/${grant.body.transaction_id}/reverse`),
      { body: { reason: "wrong org" } },
    );
    expectStatus(reversed, 404);
    expectStatus(await t.request("GET", path("org_01jd0v4n6qf9yb5c8h2m3k7x1z")), 404);
  });

  it("POST grants: operator only, validated, audited, reference unique per org, Idempotency-Key replays", async () => {
    const { org, key } = await t.createOrgWithKey();
    const refused = await t.request<Problem>("POST", path(org.id, "/grants"), {
      key,
      body: { amount: "5", source: "purchase" },
    });
    expectStatus(refused, 403);
    expect(refused.body.code).toBe("operator_only");

    for (const body of [
      { amount: "0", source: "purchase" },
      { amount: "-5", source: "purchase" },
      { amount: "1e3", source: "purchase" },
      { amount: 5, source: "purchase" },
      { amount: "5", source: "plan_allocation" },
      { amount: "5", source: "purchase", extra: true },
      { amount: "0.0000000000000000001", source: "purchase" },
    ]) {
      const res = await t.request<Problem>("POST", path(org.id, "/grants"), { body });
      expectStatus(res, 400);
      expect(res.body.code).toBe("validation_failed");
    }
    expect((await t.request<Credits>("GET", path(org.id))).body.balance).toBe("100");

    const created = await t.request<Grant>("POST", path(org.id, "/grants"), {
      body: {
        amount: "250.50",
        source: "purchase",
        reference: "pi_123",
        priority: 2,
        expires_at: "2099-01-01T00:00:00Z",
        reason: "top-up",
      },
    });
    expectStatus(created, 201);
    expect(created.body).toMatchObject({
      object: "credit_grant",
      amount: "250.5",
      remaining: "250.5",
      priority: 2,
      reference: "pi_123",
      expires_at: "2099-01-01T00:00:00.000Z",
    });
    const again = await t.request<Problem>("POST", path(org.id, "/grants"), {
      body: { amount: "1", source: "purchase", reference: "pi_123" },
    });
    expectStatus(again, 409);
    expect(again.body).toMatchObject({ code: "reference_taken", grant_id: created.body.id });
    // Another org may use the same reference.
    const other = await t.createOrg();
    expectStatus(
      await t.request("POST", path(other.id, "/grants"), {
        body: { amount: "1", source: "purchase", reference: "pi_123" },
      }),
      201,
    );

    const headers = { "Idempotency-Key": `grant-${org.id}` };
    const first = await t.request<Grant>("POST", path(org.id, "/grants"), {
      headers,
      body: { amount: "10", source: "promotional" },
    });
    const replay = await t.request<Grant>("POST", path(org.id, "/grants"), {
      headers,
      body: { amount: "10", source: "promotional" },
    });
    expectStatus(first, 201);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(replay.body.id).toBe(first.body.id);
    expect((await t.request<Credits>("GET", path(org.id))).body.balance).toBe("360.5");

    const audit = await t.request<ListBody<{ action: string; target_id: string }>>(
      "GET",
      `/v1/organizations/${org.id}/audit-events?action=credits.granted`,
    );
    expect(audit.body.data.map((e) => e.target_id)).toContain(created.body.id);
  });

  it("adjustments: signed with a reason; never below -overdraft", async () => {
    const org = await t.createOrg();
    const missingReason = await t.request<Problem>("POST", path(org.id, "/adjustments"), {
      body: { amount: "5" },
    });
    expectStatus(missingReason, 400);
    expectStatus(
      await t.request("POST", path(org.id, "/adjustments"), { body: { amount: "0", reason: "x" } }),
      400,
    );
    const plus = await t.request<Transaction>("POST", path(org.id, "/adjustments"), {
      body: { amount: "20", reason: "goodwill" },
    });
    expectStatus(plus, 201);
    expect(plus.body).toMatchObject({
      type: "adjustment",
      amount: "20",
      balance_after: "120",
      actor_type: "operator",
    });
    const minus = await t.request<Transaction>("POST", path(org.id, "/adjustments"), {
      body: { amount: "-119.5", reason: "correction" },
    });
    expectStatus(minus, 201);
    expect(minus.body.balance_after).toBe("0.5");
    const tooMuch = await t.request<Problem>("POST", path(org.id, "/adjustments"), {
      body: { amount: "-1", reason: "too much" },
    });
    expectStatus(tooMuch, 409);
    expect(tooMuch.body.code).toBe("insufficient_credits");
    expect((await t.request<Credits>("GET", path(org.id))).body.balance).toBe("0.5");
  });

  it("reverse: once, with a reason; a debit comes back, a second reversal is 409", async () => {
    const org = await t.createOrg();
    await t.request("GET", path(org.id));
    const debit = await t.services.credits.debit(org.id, "40", { source: "authorize" });
    if (!debit.ok) {
      throw new Error("debit refused");
    }
    expectStatus(
      await t.request("POST", path(org.id, `/transactions/${debit.entryId}/reverse`), { body: {} }),
      400,
    );
    const reversed = await t.request<Transaction>(
      "POST",
      path(org.id, `/transactions/${debit.entryId}/reverse`),
      {
        body: { reason: "refund" },
      },
    );
    expectStatus(reversed, 201);
    expect(reversed.body).toMatchObject({
      type: "reversal",
      amount: "40",
      balance_after: "100",
      reverses_id: debit.entryId,
    });
    const twice = await t.request<Problem>("POST", path(org.id, `/transactions/${debit.entryId}/reverse`), {
      body: { reason: "again" },
    });
    expectStatus(twice, 409);
    expect(twice.body.code).toBe("already_reversed");
    const reversal = await t.request<Problem>(
      "POST",
      path(org.id, `/transactions/${reversed.body.id}/reverse`),
      {
        body: { reason: "undo the undo" },
      },
    );
    expectStatus(reversal, 409);
    expectStatus(
      await t.request("POST", path(org.id, "/transactions/crt_01jd0v4n6qf9yb5c8h2m3k7x1z/reverse"), {
        body: { reason: "unknown" },
      }),
      404,
    );
    const grants = (await t.request<Credits>("GET", path(org.id))).body.grants;
    expect(grants.map((g) => g.remaining)).toEqual(["100"]);
  });

  it("GET transactions pages the ledger newest first with a cursor", async () => {
    const org = await t.createOrg();
    for (let i = 1; i <= 5; i++) {
      await t.request("POST", path(org.id, "/grants"), { body: { amount: String(i), source: "purchase" } });
    }
    const first = await t.request<ListBody<Transaction>>("GET", path(org.id, "/transactions?limit=4"));
    expectStatus(first, 200);
    expect(first.body.has_more).toBe(true);
    expect(first.body.data.map((e) => e.amount)).toEqual(["5", "4", "3", "2"]);
    const second = await t.request<ListBody<Transaction>>(
      "GET",
      path(org.id, `/transactions?limit=4&cursor=${first.body.next_cursor}`),
    );
    expect(second.body.data.map((e) => e.amount)).toEqual(["1", "100"]);
    expect(second.body.has_more).toBe(false);
    const bad = await t.request<Problem>("GET", path(org.id, "/transactions?cursor=nope"));
    expectStatus(bad, 400);
    expect(bad.body.code).toBe("invalid_cursor");
  });

  it("PUT settings sets the overdraft (operator only); it cannot be lowered below what is owed", async () => {
    const { org, key } = await t.createOrgWithKey();
    const refused = await t.request<Problem>("PUT", path(org.id, "/settings"), {
      key,
      body: { overdraft: "10" },
    });
    expectStatus(refused, 403);
    expectStatus(await t.request("PUT", path(org.id, "/settings"), { body: { overdraft: "-1" } }), 400);
    const set = await t.request<{ overdraft: string }>("PUT", path(org.id, "/settings"), {
      body: { overdraft: "10.0" },
    });
    expectStatus(set, 200);
    expect(set.body.overdraft).toBe("10");
    const minus = await t.request<Transaction>("POST", path(org.id, "/adjustments"), {
      body: { amount: "-105", reason: "into the overdraft" },
    });
    expectStatus(minus, 201);
    const credits = await t.request<Credits>("GET", path(org.id));
    expect(credits.body).toMatchObject({ balance: "-5", overdraft: "10", overdrawn: "5" });
    const lower = await t.request<Problem>("PUT", path(org.id, "/settings"), { body: { overdraft: "0" } });
    expectStatus(lower, 409);
    expect(lower.body.code).toBe("insufficient_credits");
  });

  it("a purchase bringing the balance to an auto_upgrade threshold moves the org to that plan", async () => {
    const org = await t.createOrg();
    const promo = await t.request<Grant & { plan_upgraded_to: string | null }>(
      "POST",
      path(org.id, "/grants"),
      {
        body: { amount: "6000", source: "promotional" },
      },
    );
    expectStatus(promo, 201);
    expect(promo.body.plan_upgraded_to).toBeNull();
    await t.request("POST", path(org.id, "/adjustments"), {
      body: { amount: "-6000", reason: "take it back" },
    });
    const below = await t.request<{ plan_upgraded_to: string | null }>("POST", path(org.id, "/grants"), {
      body: { amount: "4000", source: "purchase" },
    });
    expect(below.body.plan_upgraded_to).toBeNull();
    const reached = await t.request<{ plan_upgraded_to: string | null }>("POST", path(org.id, "/grants"), {
      body: { amount: "900", source: "purchase" },
    });
    expectStatus(reached, 201);
    expect(reached.body.plan_upgraded_to).toBe("pro");
    const view = await t.request<{ plan: { key: string } }>("GET", `/v1/organizations/${org.id}`);
    expect(view.body.plan.key).toBe("pro");
  });
});
