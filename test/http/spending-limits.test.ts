import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Role } from "../../src/domain/auth/principal.ts";
import { createServices } from "../../src/services.ts";
import { openDatabase } from "../../src/store/db.ts";
import {
  admitEveryRequest,
  createTestContext,
  expectStatus,
  type ListBody,
  PREFIXES,
  type TestContext,
} from "../harness.ts";

type Limits = {
  object: string;
  org_id: string;
  configured: boolean;
  unit: string;
  soft_limit: string | null;
  hard_limit: string | null;
  thresholds: number[];
  hard_limit_action: string;
  updated_at: string | null;
  updated_by: string | null;
};
type AlertBody = {
  id: string;
  type: string;
  period_start: string;
  details: Record<string, unknown>;
  created_at: string;
  sent_at: string | null;
};
type AlertList = ListBody<AlertBody> & { period_start: string; alert_emails: Record<string, string | null> };
type Problem = { code: string; detail?: string; errors?: { path: string; message: string }[] };

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

const path = (orgId: string) => `/v1/organizations/${orgId}/spending-limits`;

async function getLimits(orgId: string): Promise<Limits> {
  const res = await t.request<Limits>("GET", path(orgId));
  expectStatus(res, 200);
  return res.body;
}

async function periodStartOf(orgId: string): Promise<Date> {
  return (await t.services.subscriptions.current(orgId)).subscription.currentPeriodStart;
}

describe("GET/PUT /v1/organizations/{org_id}/spending-limits", () => {
  it("shows the defaults, configured: false, for an organization that never set limits", async () => {
    const org = await t.createOrg();
    expect(await getLimits(org.id)).toEqual({
      object: "spending_limits",
      org_id: org.id,
      configured: false,
      unit: "credits",
      soft_limit: null,
      hard_limit: null,
      thresholds: [50, 75, 90, 100],
      hard_limit_action: "block",
      updated_at: null,
      updated_by: null,
    });
  });

  it("sets the limits, returns them as written, and audits the change", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await t.request<Limits>("PUT", path(org.id), {
      key,
      body: {
        unit: "credits",
        soft_limit: "800.50",
        hard_limit: "1000",
        thresholds: [25, 80],
        hard_limit_action: "alert",
      },
    });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      configured: true,
      unit: "credits",
      soft_limit: "800.5",
      hard_limit: "1000",
      thresholds: [25, 80],
      hard_limit_action: "alert",
    });
    expect(res.body.updated_by).toMatch(/^key_/);
    expect(await getLimits(org.id)).toEqual(res.body);

    // Absent fields take their defaults: the whole object is replaced.
    const again = await t.request<Limits>("PUT", path(org.id), { key, body: { unit: "credits" } });
    expectStatus(again, 200);
    expect(again.body).toMatchObject({
      soft_limit: null,
      hard_limit: null,
      thresholds: [50, 75, 90, 100],
      hard_limit_action: "block",
    });

    const audit = await t.request<ListBody<{ action: string; changes: Record<string, unknown> }>>(
      "GET",
      `/v1/organizations/${org.id}/audit-events?action=organization.spending_limits_updated`,
    );
    expectStatus(audit, 200);
    expect(audit.body.data).toHaveLength(2);
    expect(audit.body.data[1]?.changes).toMatchObject({
      hard_limit: { to: "1000" },
      soft_limit: { to: "800.5" },
    });
    expect(audit.body.data[0]?.changes).toMatchObject({ hard_limit: { from: "1000", to: null } });
  });

  it.each([
    ["soft above hard", { unit: "credits", soft_limit: "10", hard_limit: "9.5" }, "soft_limit"],
    ["unsorted thresholds", { unit: "credits", thresholds: [90, 50] }, "thresholds"],
    ["duplicate thresholds", { unit: "credits", thresholds: [50, 50] }, "thresholds"],
    ["threshold 0", { unit: "credits", thresholds: [0, 50] }, "thresholds.0"],
    ["threshold 101", { unit: "credits", thresholds: [101] }, "thresholds.0"],
    ["eleven thresholds", { unit: "credits", thresholds: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] }, "thresholds"],
    ["a negative limit", { unit: "credits", hard_limit: "-1" }, "hard_limit"],
    ["an exponent", { unit: "credits", hard_limit: "1e3" }, "hard_limit"],
    ["a number instead of a string", { unit: "credits", soft_limit: 100 }, "soft_limit"],
    ["19 fraction digits", { unit: "credits", soft_limit: "0.1234567890123456789" }, "soft_limit"],
    ["no unit", { soft_limit: "1" }, "unit"],
    ["an unknown unit", { unit: "usd" }, "unit"],
    ["an unknown action", { unit: "credits", hard_limit_action: "throttle" }, "hard_limit_action"],
    ["an unknown field", { unit: "credits", spending_limit_soft: "1" }, ""],
  ])("refuses %s with 400 and changes nothing", async (_name, body, errorPath) => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(
      await t.request("PUT", path(org.id), { key, body: { unit: "credits", hard_limit: "5" } }),
      200,
    );
    const before = await getLimits(org.id);
    const res = await t.request<Problem>("PUT", path(org.id), { key, body });
    expectStatus(res, 400);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.errors?.map((e) => e.path)).toContain(errorPath);
    expect(await getLimits(org.id)).toEqual(before);
  });

  it("takes limits in currency at the preset's credit price, and refuses an organization in another currency", async () => {
    const { org, key } = await t.createOrgWithKey({ currency: "usd" });
    const dollars = await t.request<Problem>("PUT", path(org.id), {
      key,
      body: { unit: "currency", hard_limit: "100" },
    });
    expectStatus(dollars, 200);
    expect(await getLimits(org.id)).toMatchObject({ configured: true, unit: "currency", hard_limit: "100" });

    const euro = await t.createOrgWithKey({ currency: "eur" });
    const res = await t.request<Problem>("PUT", path(euro.org.id), {
      key: euro.key,
      body: { unit: "currency", hard_limit: "100" },
    });
    expectStatus(res, 422);
    expect(res.body.code).toBe("spending_unit_unsupported");
    expect(res.body.detail).toContain("USD");
    expect((await getLimits(euro.org.id)).configured).toBe(false);
  });

  it("answers 404 for another organization's limits and alerts", async () => {
    const { key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    expectStatus(await t.request("GET", path(other.id), { key }), 404);
    expectStatus(await t.request("PUT", path(other.id), { key, body: { unit: "credits" } }), 404);
    expectStatus(await t.request("GET", `/v1/organizations/${other.id}/alerts`, { key }), 404);
    expect((await getLimits(other.id)).configured).toBe(false);
    // The operator reaches any organization; an unknown one is a 404.
    expectStatus(await t.request("GET", path("org_01jd0v4n6qf9yb5c8h2m3k7x1z")), 404);
  });

  it("lets owners, billing members, billing:write keys and the operator write; refuses the others", async () => {
    const org = await t.createOrg();
    const body = { unit: "credits", hard_limit: "10" };
    const cases: [Role, number][] = [
      ["owner", 200],
      ["billing", 200],
      ["admin", 403],
      ["member", 403],
      ["viewer", 403],
    ];
    for (const [role, status] of cases) {
      const { token } = await t.createMember(org.id, role);
      const res = await t.request<Problem>("PUT", path(org.id), { key: token, body });
      expectStatus(res, status);
      if (status === 403) {
        expect(res.body.code).toBe("insufficient_scope");
      }
    }
    const reader = await t.createKey(org.id, ["billing:read"]);
    expectStatus(await t.request("GET", path(org.id), { key: reader }), 200);
    expectStatus(await t.request("PUT", path(org.id), { key: reader, body }), 403);
    const writer = await t.createKey(org.id, ["billing:write"]);
    expectStatus(await t.request("PUT", path(org.id), { key: writer, body }), 200);
    expectStatus(await t.request("PUT", path(org.id), { body }), 200);
    const { token: viewer } = await t.createMember(org.id, "viewer");
    expectStatus(await t.request("GET", path(org.id), { key: viewer }), 403);
  });
});

describe("checkSpending and isBlocked", () => {
  it("blocks at the hard limit with action block, in every process, and unblocks when the limit is raised", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(
      await t.request("PUT", path(org.id), { key, body: { unit: "credits", hard_limit: "100" } }),
      200,
    );
    const { spendingLimits, credits } = t.services;
    expect(await spendingLimits.isBlocked(org.id)).toBe(false);

    // Real debits: the account's period_used is what isBlocked reads.
    const judge = async (amount: string) => {
      const debit = await credits.debit(org.id, amount, { source: "usage" });
      if (!debit.ok) {
        throw new Error(`debit refused: ${debit.reason}`);
      }
      return spendingLimits.checkSpending(org.id, {
        periodStart: debit.periodStart,
        periodUsage: debit.periodUsed,
        allocation: debit.periodAllocation,
        balance: debit.balance,
      });
    };
    expect(await judge("99")).toEqual({ fired: expect.any(Array), blocked: false });
    const reached = await judge("1");
    expect(reached.fired).toContain("hard_limit");
    expect(reached.blocked).toBe(true);
    expect(await spendingLimits.isBlocked(org.id)).toBe(true);
    await expect(spendingLimits.assertNotBlocked(org.id)).rejects.toMatchObject({
      code: "spending_limit_reached",
      status: 402,
    });
    // The debit itself refuses to go past a blocking hard limit, in its own UPDATE.
    expect(await credits.debit(org.id, "1", { source: "usage" })).toMatchObject({
      ok: false,
      reason: "spending_limit_reached",
    });

    // Another process never saw those debits: the account row tells it.
    const database = openDatabase({ url: t.databaseUrl, poolMax: 2, onPoolError: () => {} });
    try {
      const other = createServices(database, {
        clock: { now: () => new Date() },
        prefixes: PREFIXES,
        identity: undefined,
        catalog: t.catalog,
        rateLimiter: admitEveryRequest,
      });
      expect(await other.spendingLimits.isBlocked(org.id)).toBe(true);
      // Raised above the usage: unblocked at once where it was changed.
      expectStatus(
        await t.request("PUT", path(org.id), { key, body: { unit: "credits", hard_limit: "150" } }),
        200,
      );
      expect(await spendingLimits.isBlocked(org.id)).toBe(false);
      // Action alert: never blocks.
      expectStatus(
        await t.request("PUT", path(org.id), {
          key,
          body: { unit: "credits", hard_limit: "50", hard_limit_action: "alert" },
        }),
        200,
      );
      expect(await spendingLimits.isBlocked(org.id)).toBe(false);
    } finally {
      await database.close();
    }
  });

  it("does not block an organization without limits", async () => {
    const org = await t.createOrg();
    const periodStart = await periodStartOf(org.id);
    const check = await t.services.spendingLimits.checkSpending(org.id, {
      periodStart,
      periodUsage: "5000",
      allocation: "1000",
      balance: "-10",
    });
    expect(check.blocked).toBe(false);
    expect(check.fired).toEqual(["usage_50", "usage_75", "usage_90", "usage_100", "credits_low"]);
    expect(await t.services.spendingLimits.isBlocked(org.id)).toBe(false);
  });
});

describe("GET /v1/organizations/{org_id}/alerts", () => {
  it("shows this period's alert_emails and pages every alert, newest first", async () => {
    const { org, key } = await t.createOrgWithKey({ billingEmail: "billing@example.test" });
    const empty = await t.request<AlertList>("GET", `/v1/organizations/${org.id}/alerts`, { key });
    expectStatus(empty, 200);
    expect(empty.body.data).toEqual([]);
    expect(empty.body.alert_emails).toMatchObject({
      soft_limit: null,
      hard_limit: null,
      payment_failed: null,
      usage_reset: null,
      usage_50: null,
      usage_80: null,
      usage_90: null,
      usage_100: null,
    });

    const periodStart = await periodStartOf(org.id);
    expect(empty.body.period_start).toBe(periodStart.toISOString());
    await t.services.spendingLimits.checkSpending(org.id, {
      periodStart,
      periodUsage: "760",
      allocation: "1000",
      balance: "240",
    });
    // An alert of an earlier period shows in the list, not in alert_emails.
    const earlier = new Date(periodStart.getTime() - 31 * 24 * 3600 * 1000);
    const old = await t.services.alerts.fire(org.id, "usage_90", earlier, { used: "950" });
    expect(old).toBeDefined();
    const fifty = (
      await t.request<AlertList>("GET", `/v1/organizations/${org.id}/alerts`, { key })
    ).body.data.find((a) => a.type === "usage_50");
    expect(fifty).toBeDefined();
    expect(await t.services.alerts.deliver(fifty?.id ?? "")).toBe("sent");
    expect(await t.services.alerts.deliver(fifty?.id ?? "")).toBe("already_sent");

    const res = await t.request<AlertList>("GET", `/v1/organizations/${org.id}/alerts?limit=2`, { key });
    expectStatus(res, 200);
    expect(res.body.alert_emails.usage_50).toEqual(expect.any(String));
    expect(res.body.alert_emails.usage_75).toBeNull(); // fired, not yet sent
    expect(res.body.alert_emails.usage_90).toBeNull(); // fired in an earlier period only
    expect(res.body.data.map((a) => a.type)).toEqual(["usage_90", "usage_75"]);
    expect(res.body.data[0]).toMatchObject({ period_start: earlier.toISOString(), sent_at: null });
    expect(res.body.has_more).toBe(true);
    const next = await t.request<AlertList>(
      "GET",
      `/v1/organizations/${org.id}/alerts?limit=2&cursor=${res.body.next_cursor ?? ""}`,
      { key },
    );
    expectStatus(next, 200);
    expect(next.body.data.map((a) => a.type)).toEqual(["usage_50"]);
    expect(next.body.data[0]?.details).toEqual({
      threshold: 50,
      used: "760",
      base: "1000",
      base_kind: "allocation",
      percent: 76,
    });
    expect(next.body.has_more).toBe(false);

    const outbox = await t.database.stores.mailOutbox.listForOrg(org.id, 10);
    expect(outbox.map((m) => [m.toAddress, m.kind])).toEqual([["billing@example.test", "alert.usage_50"]]);

    const bad = await t.request<Problem>("GET", `/v1/organizations/${org.id}/alerts?cursor=nope`, { key });
    expectStatus(bad, 400);
    expect(bad.body.code).toBe("invalid_cursor");
  });
});
