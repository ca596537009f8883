import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProviderEvent } from "../../src/domain/billing/billing.types.ts";
import { createManualClock, createTestContext, expectStatus, type TestContext } from "../harness.ts";

type AlertList = {
  alert_emails: Record<string, string | null>;
  data: {
    id: string;
    type: string;
    period_start: string;
    details: Record<string, unknown>;
    sent_at: string | null;
  }[];
};

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

const rand = () => randomBytes(6).toString("hex");

describe("payment_failed from Stripe's invoice.payment_failed", () => {
  it("records one payment_failed alert per period with the event, however many failures arrive", async () => {
    const customerId = `cus_${rand()}`;
    const subId = `sub_${rand()}`;
    const org = await t.createOrg({
      externalIds: { stripe_customer_id: customerId },
      billingEmail: "pay@example.test",
    });
    const now = Date.now();
    const periodStart = new Date(now - 24 * 3600 * 1000);
    await t.services.stripeWebhooks.handle({
      id: `evt_${rand()}`,
      type: "customer.subscription.created",
      createdAt: new Date(now - 60_000),
      data: {
        kind: "subscription",
        deleted: false,
        subscriptionId: subId,
        customerId,
        orgId: org.id,
        status: "active",
        priceId: null,
        quantity: 1,
        currentPeriodStart: periodStart,
        currentPeriodEnd: new Date(now + 29 * 24 * 3600 * 1000),
        trialEnd: null,
        cancelAtPeriodEnd: false,
        cancelAt: null,
        canceledAt: null,
        endedAt: null,
      },
    });
    const failure = (seconds: number): ProviderEvent => ({
      id: `evt_${rand()}`,
      type: "invoice.payment_failed",
      createdAt: new Date(now - 60_000 + seconds * 1000),
      data: {
        kind: "invoice_payment_failed",
        customerId,
        subscriptionId: subId,
        invoiceCreatedAt: new Date(now),
      },
    });
    expect(await t.services.stripeWebhooks.handle(failure(10))).toBe("applied");
    await t.services.stripeWebhooks.handle(failure(20));

    const res = await t.request<AlertList>("GET", `/v1/organizations/${org.id}/alerts`);
    expectStatus(res, 200);
    const failed = res.body.data.filter((a) => a.type === "payment_failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]?.period_start).toBe(periodStart.toISOString());
    expect(failed[0]?.details).toMatchObject({ subscription_status: "past_due" });

    expect(await t.services.alerts.deliver(failed[0]?.id ?? "")).toBe("sent");
    const [mail] = await t.database.stores.mailOutbox.listForOrg(org.id, 10);
    expect(mail).toMatchObject({ toAddress: "pay@example.test", kind: "alert.payment_failed" });
    expect(mail?.subject).toContain("a payment failed");
    expect(mail?.textBody).toContain(org.id);
    expect(mail?.textBody).toContain("billing/portal-session");
    const after = await t.request<AlertList>("GET", `/v1/organizations/${org.id}/alerts`);
    expect(after.body.alert_emails.payment_failed).toEqual(expect.any(String));
  });
});

describe("alert delivery", () => {
  it("sends one email per distinct address (billing email and members compared case-insensitively)", async () => {
    const org = await t.createOrg();
    const owner = await t.createMember(org.id, "owner");
    await t.services.orgs.update(t.operatorCtx, org.id, { billingEmail: `${owner.subject}@EXAMPLE.test` });
    const periodStart = (await t.services.subscriptions.current(org.id)).subscription.currentPeriodStart;
    const alert = await t.services.alerts.fire(org.id, "hard_limit", periodStart, {
      used: "100",
      limit: "100",
      action: "block",
    });
    expect(await t.services.alerts.deliver(alert?.id ?? "")).toBe("sent");
    const mails = await t.database.stores.mailOutbox.listForOrg(org.id, 10);
    expect(mails).toHaveLength(1);
    expect(mails[0]?.subject).toContain("billable requests are refused");
  });

  it("marks an alert of an organization without any recipient sent, with no email", async () => {
    const org = await t.createOrg();
    const periodStart = (await t.services.subscriptions.current(org.id)).subscription.currentPeriodStart;
    const alert = await t.services.alerts.fire(org.id, "usage_reset", periodStart, { allocation: "1000" });
    expect(await t.services.alerts.deliver(alert?.id ?? "")).toBe("sent");
    expect(await t.database.stores.mailOutbox.listForOrg(org.id, 10)).toEqual([]);
    expect(await t.services.alerts.deliver("alr_01jd0v4n6qf9yb5c8h2m3k7x1z")).toBe("not_found");
  });
});

describe("the alert period", () => {
  it("is the ledger's credit period: monthly, even on a yearly subscription", async () => {
    const clock = createManualClock(new Date("2026-01-10T12:00:00.000Z"));
    const c = await createTestContext({ clock });
    try {
      const org = await c.createOrg();
      await c.services.subscriptions.change(c.operatorCtx, org.id, { interval: "year" });
      clock.advance(40 * 24 * 3600 * 1000);
      const { subscription } = await c.services.subscriptions.current(org.id);
      const credits = await c.services.credits.get(org.id);
      const res = await c.request<AlertList & { period_start: string }>(
        "GET",
        `/v1/organizations/${org.id}/alerts`,
      );
      expectStatus(res, 200);
      expect(res.body.period_start).toBe(credits.period.start.toISOString());
      expect(res.body.period_start).not.toBe(subscription.currentPeriodStart.toISOString());
    } finally {
      await c.close();
    }
  });
});
