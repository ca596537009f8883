import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Services } from "../src/http/env.ts";
import { type Jobs, startJobs } from "../src/infra/jobs.ts";
import { createLogger } from "../src/infra/logger.ts";
import { createMailer, createSmtpTransport, type Mailer } from "../src/infra/mailer.ts";
import { systemClock } from "../src/lib/clock.ts";
import { createServices } from "../src/services.ts";
import { type Database, openDatabase } from "../src/store/db.ts";
import { createMailWakeSource } from "../src/store/mail.store.pg.ts";
import { admitEveryRequest, createTestContext, PREFIXES, type TestContext, uniqueName } from "./harness.ts";
import { eventually, type Received, type SmtpReceiver, startSmtp } from "./smtp.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let t: TestContext;
let smtp: SmtpReceiver;
let mailer: Mailer;
let jobs: Jobs;
/** A second process: its own pool and services on the same database. */
let secondDb: Database;
let second: Services;
const received: Received[] = [];

beforeAll(async () => {
  t = await createTestContext();
  smtp = await startSmtp(received);
  mailer = createMailer({
    store: t.database.stores.mailOutbox,
    transport: createSmtpTransport({
      url: `smtp://127.0.0.1:${smtp.port}`,
      from: "Orgplane <no-reply@orgplane.test>",
    }),
    wakeSource: createMailWakeSource(t.database.pool, () => {}),
    clock: systemClock,
    logger: createLogger("silent"),
  });
  await mailer.start();
  jobs = await startJobs({
    databaseUrl: t.databaseUrl,
    logger: createLogger("silent"),
    sweepSubscriptions: () => t.services.subscriptions.sweep(),
    alerts: t.services.alerts,
  });
  secondDb = openDatabase({ url: t.databaseUrl, poolMax: 5, onPoolError: () => {} });
  second = createServices(secondDb, {
    clock: systemClock,
    prefixes: PREFIXES,
    identity: undefined,
    catalog: t.catalog,
    rateLimiter: admitEveryRequest,
  });
  // The second process queues its alerts' deliveries into the same pg-boss queue.
  second.alerts.setDispatcher({ send: (id) => jobs.sendAlert(id), onError: () => {} });
});
afterAll(async () => {
  await jobs.stop();
  await mailer.stop();
  await smtp.close();
  await secondDb.close();
  await t.close();
});

/** An organization with a billing email, an owner, a billing member and an admin (who gets no alerts). */
async function orgWithContacts() {
  const billingEmail = `${uniqueName("billing")}@example.test`;
  const org = await t.createOrg({ billingEmail, displayName: "Acme Search" });
  const owner = await t.createMember(org.id, "owner");
  const billing = await t.createMember(org.id, "billing");
  const admin = await t.createMember(org.id, "admin");
  const email = (subject: string) => `${subject}@example.test`.toLowerCase();
  return {
    org,
    recipients: [billingEmail.toLowerCase(), email(owner.subject), email(billing.subject)].sort(),
    admin: email(admin.subject),
  };
}

function mailsOf(orgId: string, fragment?: string): Received[] {
  return received.filter(
    (m) => m.body.includes(orgId) && (fragment === undefined || m.subject.includes(fragment)),
  );
}

describe("alert emails over SMTP", () => {
  it("sends each threshold once per period however often it is crossed, to the billing email, owners and billing members", async () => {
    const { org, recipients, admin } = await orgWithContacts();
    const periodStart = (await t.services.subscriptions.current(org.id)).subscription.currentPeriodStart;
    const snapshot = { periodStart, allocation: "1000", balance: null };

    expect(
      (await t.services.spendingLimits.checkSpending(org.id, { ...snapshot, periodUsage: "500" })).fired,
    ).toEqual(["usage_50"]);
    // Crossed again in this process and in another one (which has no memory of the first).
    expect(
      (await t.services.spendingLimits.checkSpending(org.id, { ...snapshot, periodUsage: "600" })).fired,
    ).toEqual([]);
    expect(
      (await second.spendingLimits.checkSpending(org.id, { ...snapshot, periodUsage: "700" })).fired,
    ).toEqual([]);
    expect(
      (await second.spendingLimits.checkSpending(org.id, { ...snapshot, periodUsage: "900" })).fired,
    ).toEqual(["usage_75", "usage_90"]);
    expect(
      (await t.services.spendingLimits.checkSpending(org.id, { ...snapshot, periodUsage: "950" })).fired,
    ).toEqual([]);

    const all = await eventually("three alerts to three recipients", () => {
      const mine = mailsOf(org.id);
      return mine.length >= 9 ? mine : undefined;
    });
    await sleep(2500); // nothing more arrives
    expect(mailsOf(org.id)).toHaveLength(9);
    for (const pct of ["50%", "75%", "90%"]) {
      const emails = all.filter((m) => m.subject.includes(pct));
      expect(emails.flatMap((m) => m.to).sort(), pct).toEqual(recipients);
    }
    expect(all.flatMap((m) => m.to)).not.toContain(admin);

    const ninety = all.find((m) => m.subject.includes("90%"));
    expect(ninety?.subject).toBe("Acme Search: 90% of this period's credit allocation used");
    expect(ninety?.body).toContain(`Acme Search (${org.id}) has used 90% (900 of 1,000 credits)`);
    expect(ninety?.body).toContain(periodStart.toISOString().slice(0, 10));
    expect(ninety?.body).toContain("/docs");

    const list = await t.request<{ alert_emails: Record<string, string | null> }>(
      "GET",
      `/v1/organizations/${org.id}/alerts`,
    );
    expect(list.body.alert_emails.usage_50).toEqual(expect.any(String));
    expect(list.body.alert_emails.usage_90).toEqual(expect.any(String));
    expect(list.body.alert_emails.usage_100).toBeNull();
  });

  it("records one alert and sends one email when two processes fire the same type at once", async () => {
    const { org, recipients } = await orgWithContacts();
    const periodStart = (await t.services.subscriptions.current(org.id)).subscription.currentPeriodStart;
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () =>
        t.services.alerts.fire(org.id, "soft_limit", periodStart, { used: "80", limit: "80" }),
      ),
      ...Array.from({ length: 5 }, () =>
        second.alerts.fire(org.id, "soft_limit", periodStart, { used: "80", limit: "80" }),
      ),
    ]);
    expect(results.filter((r) => r !== undefined)).toHaveLength(1);
    const emails = await eventually("the soft-limit emails", () => {
      const mine = mailsOf(org.id, "soft spending limit");
      return mine.length >= recipients.length ? mine : undefined;
    });
    await sleep(2500);
    expect(mailsOf(org.id, "soft spending limit")).toHaveLength(recipients.length);
    expect(emails.flatMap((m) => m.to).sort()).toEqual(recipients);
    const rows = await t.request<{ data: { type: string; sent_at: string | null }[] }>(
      "GET",
      `/v1/organizations/${org.id}/alerts`,
    );
    expect(rows.body.data).toHaveLength(1);
    expect(rows.body.data[0]?.sent_at).toEqual(expect.any(String));
  });

  it("fires again in a new period", async () => {
    const { org, recipients } = await orgWithContacts();
    const periodStart = (await t.services.subscriptions.current(org.id)).subscription.currentPeriodStart;
    const nextPeriod = new Date(periodStart.getTime() + 31 * 24 * 3600 * 1000);
    const snapshot = { allocation: "1000", balance: null, periodUsage: "500" };
    expect(
      (await t.services.spendingLimits.checkSpending(org.id, { ...snapshot, periodStart })).fired,
    ).toEqual(["usage_50"]);
    expect(
      (await second.spendingLimits.checkSpending(org.id, { ...snapshot, periodStart: nextPeriod })).fired,
    ).toEqual(["usage_50"]);
    await eventually("two usage_50 emails to each recipient", () => {
      const mine = mailsOf(org.id, "50%");
      return mine.length >= 2 * recipients.length ? mine : undefined;
    });
    const bodies = mailsOf(org.id, "50%").map((m) => m.body);
    expect(bodies.some((b) => b.includes(periodStart.toISOString().slice(0, 10)))).toBe(true);
    expect(bodies.some((b) => b.includes(nextPeriod.toISOString().slice(0, 10)))).toBe(true);
  });

  it("delivers an alert recorded without a wake-up (another transaction) through the sweep's job", async () => {
    const { org, recipients } = await orgWithContacts();
    const periodStart = (await t.services.subscriptions.current(org.id)).subscription.currentPeriodStart;
    // No dispatcher: as if the process died right after recording it.
    second.alerts.setDispatcher(undefined);
    const alert = await second.alerts.fire(org.id, "credits_low", periodStart, {
      balance: "5",
      allocation: "1000",
    });
    second.alerts.setDispatcher({ send: (id) => jobs.sendAlert(id), onError: () => {} });
    expect(alert?.sentAt).toBeNull();
    // What the minute's sweep does once the alert is a minute old.
    const clock = { now: () => new Date(Date.now() + 61_000) };
    const later = createServices(secondDb, {
      clock,
      prefixes: PREFIXES,
      identity: undefined,
      catalog: t.catalog,
      rateLimiter: admitEveryRequest,
    });
    const due = await later.alerts.undelivered();
    expect(due).toContain(alert?.id);
    for (const id of due) {
      await jobs.sendAlert(id);
    }
    await eventually("the credits_low emails", () => {
      const mine = mailsOf(org.id, "credit balance is low");
      return mine.length >= recipients.length ? mine : undefined;
    });
  });
});
