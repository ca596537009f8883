/**
 * Where `trial_ending`, `quota_80` and `quota_95` come from: the trial sweep (once per organization and
 * period, however many processes and runs) and create transactions that bring a count quota to 80 % / 95 %
 * of its limit. Delivery is the alerts job's (`deliver`), exercised here by hand.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRIAL_ENDING_WINDOW_DAYS } from "../src/domain/alerts/alerts.service.ts";
import type { Alert } from "../src/domain/alerts/alerts.types.ts";
import type { Catalog } from "../src/domain/catalog/catalog.types.ts";
import { startJobs } from "../src/infra/jobs.ts";
import { createLogger } from "../src/infra/logger.ts";
import {
  createManualClock,
  createSecondApp,
  createTestContext,
  expectStatus,
  type SecondApp,
  type TestContext,
  uniqueName,
} from "./harness.ts";
import { testPlan } from "./plans.ts";

const DAY = 24 * 3600 * 1000;

/** New organizations trial Pro (49 USD a month) for 14 days; a cancellation falls back to Free. */
const catalog: Catalog = {
  preset: null,
  keyPrefix: "sk",
  categories: [],
  meters: [],
  creditCosts: {},
  usageCurrency: "usd",
  plans: [
    testPlan("free", { name: "Free", quotas: { projects: 2, api_keys: 2 } }),
    testPlan("pro", {
      name: "Pro",
      trialDays: 14,
      price: { amountMinor: 4900, currency: "usd", interval: "month" },
      quotas: { projects: 20, api_keys: 5, members: null },
    }),
  ],
  defaultPlan: "pro",
  fallbackPlan: "free",
};

const clock = createManualClock(new Date("2027-03-01T10:00:00.000Z"));
let t: TestContext;
let second: SecondApp;

beforeAll(async () => {
  t = await createTestContext({ catalog, clock });
  second = createSecondApp(t, { clock });
});
afterAll(async () => {
  await second.close();
  await t.close();
});

async function alertsOf(orgId: string, type?: string): Promise<Alert[]> {
  const rows = await t.database.stores.alerts.list({ orgId, limit: 100, after: undefined });
  return rows.filter((a) => type === undefined || a.type === type);
}

async function deliveredMail(alert: Alert) {
  expect(await t.services.alerts.deliver(alert.id)).toBe("sent");
  const mail = await t.database.stores.mailOutbox.listForOrg(alert.orgId, 50);
  return mail.filter((m) => m.kind === `alert.${alert.type}`);
}

describe("trial_ending", () => {
  it("fires once when the trial ends within the window, however often and wherever the sweep runs", async () => {
    const billingEmail = `${uniqueName("billing")}@example.test`;
    const org = await t.createOrg({ billingEmail, displayName: "Acme Search" });
    const sub = (await t.services.subscriptions.current(org.id)).subscription;
    expect(sub.status).toBe("trialing");
    expect(sub.trialEnd?.toISOString()).toBe(new Date(clock.now().getTime() + 14 * DAY).toISOString());

    // 10 days left: not yet.
    clock.advance(4 * DAY);
    await t.services.alerts.sweepTrialsEnding();
    await second.services.alerts.sweepTrialsEnding();
    expect(await alertsOf(org.id, "trial_ending")).toEqual([]);

    // Just under 3 days left: due. Two processes at once, then each again.
    clock.advance((10 - TRIAL_ENDING_WINDOW_DAYS) * DAY + 60_000);
    await Promise.all([t.services.alerts.sweepTrialsEnding(), second.services.alerts.sweepTrialsEnding()]);
    await t.services.alerts.sweepTrialsEnding();
    await second.services.alerts.sweepTrialsEnding();
    clock.advance(DAY);
    await t.services.alerts.sweepTrialsEnding();

    const fired = await alertsOf(org.id, "trial_ending");
    expect(fired).toHaveLength(1);
    const [alert] = fired;
    if (alert === undefined) {
      throw new Error("no trial_ending alert");
    }
    expect(alert.details).toMatchObject({
      trial_end: sub.trialEnd?.toISOString(),
      trial_plan: "pro",
      at_trial_end: "continues",
      next_plan: "pro",
      next_plan_name: "Pro",
      next_plan_price: "49.00 USD a month",
      fallback_plan: "free",
    });
    // The credit period every alert of this organization uses.
    const list = await t.request<{ period_start: string; alert_emails: Record<string, string | null> }>(
      "GET",
      `/v1/organizations/${org.id}/alerts`,
    );
    expectStatus(list, 200);
    expect(alert.periodStart.toISOString()).toBe(list.body.period_start);

    const mail = await deliveredMail(alert);
    expect(mail.map((m) => m.toAddress)).toEqual([billingEmail]);
    const trialDay = sub.trialEnd?.toISOString().slice(0, 10);
    expect(mail[0]?.subject).toBe(`Acme Search: the trial ends on ${trialDay}`);
    const body = mail[0]?.textBody ?? "";
    expect(body).toContain(
      `The trial of Acme Search (${org.id}) on the Pro plan (pro) ends on ${trialDay} at 10:00 UTC.`,
    );
    expect(body).toContain("Then the Pro plan (pro) continues as a paid subscription at 49.00 USD a month");
    expect(body).toContain(`/v1/organizations/${org.id}/billing/portal-session`);
    expect(body).toContain("the organization then moves to the Free plan (free)");
    // Delivered once: a second run sends nothing.
    expect(await t.services.alerts.deliver(alert.id)).toBe("already_sent");
  });

  it("names the fallback plan when the trial was cancelled, and skips ended trials and other plans", async () => {
    const cancelled = await t.createOrg({ billingEmail: `${uniqueName("b")}@example.test` });
    expectStatus(await t.request("DELETE", `/v1/organizations/${cancelled.id}/subscription`), 200);
    const onFree = await t.createOrg();
    await t.setPlan(onFree.id, "free");

    clock.advance(12 * DAY);
    await t.services.alerts.sweepTrialsEnding();
    const [alert] = await alertsOf(cancelled.id, "trial_ending");
    expect(alert?.details).toMatchObject({
      at_trial_end: "fallback",
      next_plan: "free",
      next_plan_name: "Free",
    });
    expect(await alertsOf(onFree.id, "trial_ending")).toEqual([]);
    if (alert === undefined) {
      throw new Error("no trial_ending alert");
    }
    const [mail] = await deliveredMail(alert);
    expect(mail?.textBody).toContain("so the organization then moves to the Free plan (free)");
    expect(mail?.textBody).toContain('"cancel_at_period_end": false');

    // Past the trial's end: nothing more fires.
    clock.advance(3 * DAY);
    await t.services.alerts.sweepTrialsEnding();
    expect(await alertsOf(cancelled.id, "trial_ending")).toHaveLength(1);
  });
});

describe("quota_80 and quota_95", () => {
  function createProject(orgId: string, slug?: string) {
    return t.request("POST", `/v1/organizations/${orgId}/projects`, {
      body: { name: uniqueName("prj"), ...(slug === undefined ? {} : { slug }) },
    });
  }

  it("fire once each as creates cross 80 % and 95 % of a quota, in the create's transaction", async () => {
    const billingEmail = `${uniqueName("billing")}@example.test`;
    const org = await t.createOrg({ billingEmail, displayName: "Acme Search" });
    // 15 of 20 projects: 75 %.
    for (let i = 0; i < 15; i++) {
      expectStatus(await createProject(org.id, `p-${i}`), 201);
    }
    expect(await alertsOf(org.id)).toEqual([]);

    // A create that fails (slug taken) would have brought it to 80 %: nothing is recorded.
    expectStatus(await createProject(org.id, "p-0"), 409);
    expect(await alertsOf(org.id)).toEqual([]);

    expectStatus(await createProject(org.id), 201); // 16 of 20: 80 %
    const [q80] = await alertsOf(org.id, "quota_80");
    expect(q80?.details).toEqual({ quota: "projects", used: 16, limit: 20, plan: "pro" });
    expect(await alertsOf(org.id, "quota_95")).toEqual([]);

    expectStatus(await createProject(org.id), 201); // 17
    expectStatus(await createProject(org.id), 201); // 18: 90 %
    expect(await alertsOf(org.id)).toHaveLength(1);
    expectStatus(await createProject(org.id), 201); // 19: 95 %
    const [q95] = await alertsOf(org.id, "quota_95");
    expect(q95?.details).toEqual({ quota: "projects", used: 19, limit: 20, plan: "pro" });
    expectStatus(await createProject(org.id), 201); // 20: 100 %

    // Another quota crossing 80 % in the same period (4 of 5 keys, through another process) adds nothing.
    for (let i = 0; i < 4; i++) {
      expectStatus(
        await second.request("POST", `/v1/organizations/${org.id}/api-keys`, {
          body: { name: uniqueName("key"), scopes: ["projects:read"] },
        }),
        201,
      );
    }
    expect((await alertsOf(org.id)).map((a) => a.type).sort()).toEqual(["quota_80", "quota_95"]);
    const list = await t.request<{ period_start: string }>("GET", `/v1/organizations/${org.id}/alerts`);
    expect(q80?.periodStart.toISOString()).toBe(list.body.period_start);

    if (q80 === undefined || q95 === undefined) {
      throw new Error("quota alerts missing");
    }
    const [mail80] = await deliveredMail(q80);
    expect(mail80?.toAddress).toBe(billingEmail);
    expect(mail80?.subject).toBe("Acme Search: 80% of the projects quota used (16 of 20)");
    expect(mail80?.textBody).toContain(
      `Acme Search (${org.id}) now has 16 projects; its plan (pro) allows 20`,
    );
    expect(mail80?.textBody).toContain("403 quota_exceeded");
    const [mail95] = await deliveredMail(q95);
    expect(mail95?.subject).toBe("Acme Search: 95% of the projects quota used (19 of 20)");

    // Both delivered: each marked sent with its emails in the outbox.
    expect((await alertsOf(org.id)).every((a) => a.sentAt !== null)).toBe(true);
  });

  it("leaves alerts recorded in a create's transaction to the delivery sweep", async () => {
    const org = await t.createOrg();
    for (let i = 0; i < 4; i++) {
      expectStatus(
        await t.request("POST", `/v1/organizations/${org.id}/api-keys`, {
          body: { name: uniqueName("key"), scopes: ["projects:read"] },
        }),
        201,
      );
    }
    const [q80] = await alertsOf(org.id, "quota_80");
    expect(q80?.details).toEqual({ quota: "api_keys", used: 4, limit: 5, plan: "pro" });
    expect(q80?.sentAt).toBeNull();
    clock.advance(61_000);
    expect(await t.services.alerts.undelivered()).toContain(q80?.id);
  });

  it("fires again in a new credit period, not before", async () => {
    const org = await t.createOrg();
    for (let i = 0; i < 16; i++) {
      expectStatus(await createProject(org.id), 201);
    }
    expect(await alertsOf(org.id, "quota_80")).toHaveLength(1);
    // Deleting and recreating in the same period: no second alert.
    const projects = await t.request<{ data: { id: string }[] }>(
      "GET",
      `/v1/organizations/${org.id}/projects`,
    );
    expectStatus(
      await t.request("DELETE", `/v1/organizations/${org.id}/projects/${projects.body.data[0]?.id}`),
      200,
    );
    expectStatus(await createProject(org.id), 201);
    expect(await alertsOf(org.id, "quota_80")).toHaveLength(1);

    // The next credit period: the next create at ≥ 80 % fires again.
    clock.advance(32 * DAY);
    expectStatus(await createProject(org.id), 201); // 17 of 20
    const fired = await alertsOf(org.id, "quota_80");
    expect(fired).toHaveLength(2);
    expect(new Set(fired.map((a) => a.periodStart.toISOString())).size).toBe(2);
  });
});

describe("the trial_ending sweep's schedule", () => {
  it("is a pg-boss cron every minute, next to the subscription sweep", async () => {
    const jobs = await startJobs({
      databaseUrl: t.databaseUrl,
      logger: createLogger("silent"),
      sweepSubscriptions: () => t.services.subscriptions.sweep(),
      alerts: t.services.alerts,
    });
    try {
      const { rows } = await t.database.pool.query<{ name: string; cron: string }>(
        "SELECT name, cron FROM pgboss.schedule WHERE name IN ('trials-ending-sweep', 'subscriptions-sweep') ORDER BY name",
      );
      expect(rows).toEqual([
        { name: "subscriptions-sweep", cron: "* * * * *" },
        { name: "trials-ending-sweep", cron: "* * * * *" },
      ]);
    } finally {
      await jobs.stop();
    }
  });
});
