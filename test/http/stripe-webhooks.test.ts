/**
 * Stripe's webhook: events are built here as JSON and signed with the stripe package's own test helper
 * (`Stripe.webhooks.generateTestHeaderString`), then posted without any Orgplane credential, as Stripe does.
 */
import { randomBytes } from "node:crypto";
import { and, eq } from "drizzle-orm";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog } from "../../src/domain/catalog/catalog.types.ts";
import type { Organization } from "../../src/domain/orgs/orgs.types.ts";
import { loadPreset } from "../../src/infra/catalog-file.ts";
import { auditEvents } from "../../src/store/schema/audit-events.ts";
import { planVersions } from "../../src/store/schema/plan-versions.ts";
import { stripeEvents } from "../../src/store/schema/stripe-events.ts";
import { subscriptions } from "../../src/store/schema/subscriptions.ts";
import { createTestContext, expectStatus, type TestContext, type TestResponse } from "../harness.ts";

const WEBHOOK_SECRET = `whsec_${randomBytes(16).toString("hex")}`;
const PRO_PRICE = "price_test_pro";
const TEAM_PRICE = "price_test_team";

let t: TestContext;

async function catalogWithPrices(): Promise<Catalog> {
  const preset = await loadPreset("multimodal-search");
  const prices: Record<string, string> = { pro: PRO_PRICE, team: TEAM_PRICE };
  return {
    ...preset,
    plans: preset.plans.map((p) => ({ ...p, stripePriceId: prices[p.key] ?? null })),
  };
}

beforeAll(async () => {
  t = await createTestContext({
    catalog: await catalogWithPrices(),
    stripe: { secretKey: undefined, webhookSecret: WEBHOOK_SECRET, apiBase: undefined },
  });
});

afterAll(async () => {
  await t.close();
});

// ---------------------------------------------------------------------------------------------------
// Events

const ids = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;
const seconds = (d: Date) => Math.floor(d.getTime() / 1000);
/** A base time in whole seconds, like Stripe's `created`. */
const BASE = seconds(new Date()) - 3600;

type StripeEvent = { id: string; type: string; created: number; data: { object: Record<string, unknown> } };

function event(type: string, object: Record<string, unknown>, created = BASE): StripeEvent {
  return { id: ids("evt"), type, created, data: { object } };
}

function subscriptionObject(
  subId: string,
  customerId: string,
  orgId: string | null,
  fields: {
    status?: string;
    price?: string;
    quantity?: number;
    periodStart?: number;
    periodEnd?: number;
    trialEnd?: number | null;
    cancelAtPeriodEnd?: boolean;
    cancelAt?: number | null;
    canceledAt?: number | null;
    endedAt?: number | null;
  } = {},
): Record<string, unknown> {
  const start = fields.periodStart ?? BASE;
  return {
    id: subId,
    object: "subscription",
    customer: customerId,
    status: fields.status ?? "active",
    metadata: orgId === null ? {} : { org_id: orgId },
    items: {
      object: "list",
      data: [
        {
          id: ids("si"),
          price: { id: fields.price ?? PRO_PRICE, object: "price" },
          quantity: fields.quantity ?? 1,
          current_period_start: start,
          current_period_end: fields.periodEnd ?? start + 30 * 86_400,
        },
      ],
    },
    trial_end: fields.trialEnd ?? null,
    cancel_at_period_end: fields.cancelAtPeriodEnd ?? false,
    cancel_at: fields.cancelAt ?? null,
    canceled_at: fields.canceledAt ?? null,
    ended_at: fields.endedAt ?? null,
  };
}

function invoiceObject(customerId: string, subId: string, created = BASE): Record<string, unknown> {
  return {
    id: ids("in"),
    object: "invoice",
    customer: customerId,
    created,
    parent: { type: "subscription_details", subscription_details: { subscription: subId } },
  };
}

type WebhookBody = { received: boolean; event_id: string; outcome: string };

function post(
  body: string,
  signature: string | undefined,
  target: TestContext = t,
): Promise<TestResponse<WebhookBody>> {
  return target.request<WebhookBody>("POST", "/v1/webhooks/stripe", {
    key: undefined,
    rawBody: body,
    headers: {
      "Content-Type": "application/json; charset=utf-8",
      ...(signature === undefined ? {} : { "Stripe-Signature": signature }),
    },
  });
}

function sign(payload: string, secret = WEBHOOK_SECRET): string {
  return Stripe.webhooks.generateTestHeaderString({ payload, secret });
}

async function deliver(e: StripeEvent): Promise<string> {
  const payload = JSON.stringify(e);
  const res = await post(payload, sign(payload));
  expectStatus(res, 200);
  expect(res.body.event_id).toBe(e.id);
  return res.body.outcome;
}

// ---------------------------------------------------------------------------------------------------
// Reading state

async function subscriptionOf(orgId: string) {
  const [row] = await t.database.db
    .select({ sub: subscriptions, planKey: planVersions.key })
    .from(subscriptions)
    .innerJoin(planVersions, eq(planVersions.id, subscriptions.planVersionId))
    .where(eq(subscriptions.orgId, orgId));
  if (row === undefined) {
    throw new Error(`organization ${orgId} has no subscription`);
  }
  return { ...row.sub, planKey: row.planKey };
}

async function stripeAudit(orgId: string) {
  return t.database.db
    .select()
    .from(auditEvents)
    .where(and(eq(auditEvents.orgId, orgId), eq(auditEvents.actorType, "system")));
}

/** An organization already linked to a Stripe customer, as after a checkout link was first requested. */
async function linkedOrg(): Promise<{ org: Organization; customerId: string; subId: string }> {
  const customerId = ids("cus");
  const org = await t.createOrg({ externalIds: { stripe_customer_id: customerId } });
  return { org, customerId, subId: ids("sub") };
}

// ---------------------------------------------------------------------------------------------------

describe("POST /v1/webhooks/stripe: signatures", () => {
  it("is reached without an Orgplane credential, and refuses a delivery without Stripe-Signature: 400", async () => {
    const res = await post(JSON.stringify(event("invoice.created", {})), undefined);
    expectStatus(res, 400);
    expect(res.headers.get("content-type")).toContain("application/problem+json");
    expect(res.body).toMatchObject({ code: "invalid_signature" });
  });

  it("refuses a signature made with another secret: 400 invalid_signature", async () => {
    const payload = JSON.stringify(event("invoice.created", {}));
    const res = await post(payload, sign(payload, "whsec_not_the_right_one"));
    expectStatus(res, 400);
    expect(res.body).toMatchObject({ code: "invalid_signature" });
  });

  it("refuses a body changed after signing: 400 invalid_signature, and nothing is recorded", async () => {
    const e = event("customer.subscription.updated", subscriptionObject(ids("sub"), ids("cus"), null));
    const signature = sign(JSON.stringify(e));
    const res = await post(JSON.stringify({ ...e, type: "customer.subscription.deleted" }), signature);
    expectStatus(res, 400);
    expect(res.body).toMatchObject({ code: "invalid_signature" });
    const recorded = await t.database.db.select().from(stripeEvents).where(eq(stripeEvents.id, e.id));
    expect(recorded).toEqual([]);
  });

  it("answers 409 billing_provider_not_configured when STRIPE_WEBHOOK_SECRET is unset", async () => {
    const bare = await createTestContext();
    try {
      const payload = JSON.stringify(event("invoice.created", {}));
      const res = await post(payload, sign(payload), bare);
      expectStatus(res, 409);
      expect(res.body).toMatchObject({ code: "billing_provider_not_configured" });
    } finally {
      await bare.close();
    }
  });

  it("is listed in OpenAPI as a public operation", async () => {
    const res = await t.request<{ paths: Record<string, { post?: { security?: unknown[] } }> }>(
      "GET",
      "/openapi.json",
    );
    expect(res.body.paths["/v1/webhooks/stripe"]?.post?.security).toEqual([]);
  });
});

describe("POST /v1/webhooks/stripe: events", () => {
  it("checkout.session.completed links the customer and the subscription to the organization", async () => {
    const org = await t.createOrg();
    const customerId = ids("cus");
    const subId = ids("sub");
    const outcome = await deliver(
      event("checkout.session.completed", {
        id: ids("cs"),
        object: "checkout.session",
        client_reference_id: org.id,
        metadata: { org_id: org.id },
        customer: customerId,
        subscription: subId,
      }),
    );
    expect(outcome).toBe("applied");
    const after = await t.database.stores.orgs.find(org.id);
    expect(after?.externalIds.stripe_customer_id).toBe(customerId);
    const sub = await subscriptionOf(org.id);
    expect(sub).toMatchObject({
      providerCustomerId: customerId,
      providerSubscriptionId: subId,
      provider: "stripe",
    });
    const audit = await stripeAudit(org.id);
    expect(audit.map((a) => a.actorId)).toEqual(audit.map(() => "stripe"));
    expect(audit.map((a) => a.action)).toEqual(
      expect.arrayContaining(["organization.updated", "subscription.linked"]),
    );
  });

  it("customer.subscription.created puts the organization on the plan of the price, with Stripe's period and trial", async () => {
    const { org, customerId, subId } = await linkedOrg();
    const trialEnd = BASE + 14 * 86_400;
    const outcome = await deliver(
      event(
        "customer.subscription.created",
        subscriptionObject(subId, customerId, null, {
          status: "trialing",
          price: TEAM_PRICE,
          quantity: 3,
          trialEnd,
          periodStart: BASE,
          periodEnd: BASE + 31 * 86_400,
        }),
      ),
    );
    expect(outcome).toBe("applied");
    const sub = await subscriptionOf(org.id);
    expect(sub).toMatchObject({
      planKey: "team",
      status: "trialing",
      seats: 3,
      providerSubscriptionId: subId,
      providerCustomerId: customerId,
    });
    expect(sub.trialEnd?.getTime()).toBe(trialEnd * 1000);
    expect(sub.currentPeriodStart.getTime()).toBe(BASE * 1000);
    expect(sub.currentPeriodEnd.getTime()).toBe((BASE + 31 * 86_400) * 1000);
    expect(sub.providerStateAt?.getTime()).toBe(BASE * 1000);
  });

  it("customer.subscription.updated records cancel_at_period_end and cancel_at", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    const cancelAt = BASE + 30 * 86_400;
    const outcome = await deliver(
      event(
        "customer.subscription.updated",
        subscriptionObject(subId, customerId, org.id, { cancelAtPeriodEnd: true, cancelAt }),
        BASE + 60,
      ),
    );
    expect(outcome).toBe("applied");
    const sub = await subscriptionOf(org.id);
    expect(sub).toMatchObject({ planKey: "pro", status: "active", cancelAtPeriodEnd: true });
    expect(sub.cancelAt?.getTime()).toBe(cancelAt * 1000);
    const actions = (await stripeAudit(org.id)).map((a) => a.action);
    expect(actions).toEqual(expect.arrayContaining(["subscription.updated"]));
  });

  it("a replayed event has no second effect", async () => {
    const { org, customerId, subId } = await linkedOrg();
    const created = event(
      "customer.subscription.created",
      subscriptionObject(subId, customerId, org.id),
      BASE,
    );
    expect(await deliver(created)).toBe("applied");
    const failed = event("invoice.payment_failed", invoiceObject(customerId, subId), BASE + 10);
    expect(await deliver(failed)).toBe("applied");
    const paid = event("invoice.paid", invoiceObject(customerId, subId), BASE + 20);
    expect(await deliver(paid)).toBe("applied");
    const auditBefore = await stripeAudit(org.id);

    // Delivered again, payment_failed would make the organization past due once more.
    expect(await deliver(failed)).toBe("duplicate");
    expect(await deliver(created)).toBe("duplicate");
    const sub = await subscriptionOf(org.id);
    expect(sub).toMatchObject({ status: "active", pauseReason: null });
    expect(await stripeAudit(org.id)).toHaveLength(auditBefore.length);
    const recorded = await t.database.db.select().from(stripeEvents).where(eq(stripeEvents.id, failed.id));
    expect(recorded).toHaveLength(1);
    expect(recorded[0]?.orgId).toBe(org.id);
  });

  it("the same event delivered twice at once is applied once", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    const auditBefore = (await stripeAudit(org.id)).length;
    const failed = event("invoice.payment_failed", invoiceObject(customerId, subId), BASE + 10);
    const outcomes = await Promise.all([deliver(failed), deliver(failed)]);
    expect(outcomes.sort()).toEqual(["applied", "duplicate"]);
    expect(await stripeAudit(org.id)).toHaveLength(auditBefore + 1);
  });

  it("out-of-order customer.subscription.updated events: the newest state wins", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    const newer = event(
      "customer.subscription.updated",
      subscriptionObject(subId, customerId, org.id, { price: TEAM_PRICE, status: "active", quantity: 5 }),
      BASE + 120,
    );
    const older = event(
      "customer.subscription.updated",
      subscriptionObject(subId, customerId, org.id, { price: PRO_PRICE, status: "past_due", quantity: 2 }),
      BASE + 60,
    );
    expect(await deliver(newer)).toBe("applied");
    expect(await deliver(older)).toBe("stale");
    const sub = await subscriptionOf(org.id);
    expect(sub).toMatchObject({ planKey: "team", status: "active", seats: 5 });
    expect(sub.providerStateAt?.getTime()).toBe((BASE + 120) * 1000);
  });

  it("customer.subscription.deleted cancels the subscription and puts the organization on the fallback plan", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    const endedAt = BASE + 600;
    const outcome = await deliver(
      event(
        "customer.subscription.deleted",
        subscriptionObject(subId, customerId, org.id, { status: "canceled", canceledAt: endedAt, endedAt }),
        endedAt,
      ),
    );
    expect(outcome).toBe("applied");
    const sub = await subscriptionOf(org.id);
    expect(sub).toMatchObject({
      planKey: t.catalog.fallbackPlan,
      status: "active",
      providerSubscriptionId: null,
    });
    expect(sub.canceledAt?.getTime()).toBe(endedAt * 1000);
    expect(sub.currentPeriodStart.getTime()).toBe(endedAt * 1000);
    const actions = (await stripeAudit(org.id)).map((a) => a.action);
    expect(actions).toContain("subscription.canceled");

    // A late update of the ended subscription does not bring it back.
    const late = event(
      "customer.subscription.updated",
      subscriptionObject(subId, customerId, org.id),
      BASE + 300,
    );
    expect(await deliver(late)).toBe("stale");
    expect((await subscriptionOf(org.id)).planKey).toBe(t.catalog.fallbackPlan);
  });

  it("events of another Stripe subscription do not touch the one the organization follows", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    const otherId = ids("sub");
    const deleted = event(
      "customer.subscription.deleted",
      subscriptionObject(otherId, customerId, org.id, { status: "canceled", canceledAt: BASE + 50 }),
      BASE + 50,
    );
    expect(await deliver(deleted)).toBe("ignored");
    expect(await subscriptionOf(org.id)).toMatchObject({
      planKey: "pro",
      status: "active",
      providerSubscriptionId: subId,
    });
  });

  it("invoice.created records the newest invoice date, whatever the delivery order", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    const later = BASE + 2000;
    expect(await deliver(event("invoice.created", invoiceObject(customerId, subId, later), later))).toBe(
      "applied",
    );
    expect(
      await deliver(event("invoice.created", invoiceObject(customerId, subId, BASE + 1000), BASE + 1000)),
    ).toBe("ignored");
    expect((await subscriptionOf(org.id)).lastInvoiceAt?.getTime()).toBe(later * 1000);
  });

  it("invoice.payment_failed makes the subscription past due with pause reason payment_failed; invoice.paid restores it", async () => {
    const { org, customerId, subId } = await linkedOrg();
    await deliver(event("customer.subscription.created", subscriptionObject(subId, customerId, org.id)));
    expect(await deliver(event("invoice.payment_failed", invoiceObject(customerId, subId), BASE + 10))).toBe(
      "applied",
    );
    expect(await subscriptionOf(org.id)).toMatchObject({ status: "past_due", pauseReason: "payment_failed" });
    expect(await deliver(event("invoice.paid", invoiceObject(customerId, subId), BASE + 20))).toBe("applied");
    expect(await subscriptionOf(org.id)).toMatchObject({ status: "active", pauseReason: null });
    const actions = (await stripeAudit(org.id)).map((a) => a.action);
    expect(actions).toEqual(
      expect.arrayContaining(["subscription.payment_failed", "subscription.payment_succeeded"]),
    );
  });

  it("an unknown event type is answered 200 ignored and recorded", async () => {
    const e = event("customer.tax_id.created", { id: ids("txi"), object: "tax_id" });
    expect(await deliver(e)).toBe("ignored");
    const recorded = await t.database.db.select().from(stripeEvents).where(eq(stripeEvents.id, e.id));
    expect(recorded).toMatchObject([{ type: "customer.tax_id.created", orgId: null }]);
    expect(await deliver(e)).toBe("duplicate");
  });

  it("an event for a customer no organization has is answered 200 unmatched", async () => {
    const e = event("customer.subscription.updated", subscriptionObject(ids("sub"), ids("cus"), null));
    expect(await deliver(e)).toBe("unmatched");
  });

  it("never logs the webhook payload or the secret", () => {
    const logs = t.logLines.join("");
    expect(logs).not.toContain(WEBHOOK_SECRET);
    expect(logs).not.toContain('"data":{"object"');
  });
});
