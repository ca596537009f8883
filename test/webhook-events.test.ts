/**
 * The event catalog, emitted from the changes that cause them: each type is caused here through the API (or,
 * for the sweeps, the service a pg-boss cron calls), and the outbox (`webhook_events`) then holds exactly one
 * event of that type for the organization, whose envelope passes that type's schema from the OpenAPI
 * document, numbered 1..n without gaps. Changes that fail leave no event. Stripe events are signed with
 * Stripe's own SDK, as in test/http/stripe-webhooks.test.ts.
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordAlert } from "../src/domain/alerts/alerts.service.ts";
import type { Catalog } from "../src/domain/catalog/catalog.types.ts";
import type { Organization } from "../src/domain/orgs/orgs.types.ts";
import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "../src/domain/webhooks/webhooks.types.ts";
import { buildApi, openApiDocument } from "../src/http/api.ts";
import { webhookEventComponentName, webhookEventSchema } from "../src/http/schemas/webhook-events.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type TestContext,
  uniqueName,
} from "./harness.ts";
import { testPlan } from "./plans.ts";

const DAY = 24 * 3600 * 1000;
const WEBHOOK_SECRET = `whsec_${randomBytes(16).toString("hex")}`;
const PRO_PRICE = "price_events_pro";

/** New organizations trial Pro for 14 days (5 keys, 20 projects, 1,000 credits a month); Free is the fallback. */
const catalog: Catalog = {
  preset: null,
  keyPrefix: "sk",
  categories: [{ key: "search", description: "Searches" }],
  meters: [],
  creditCosts: {},
  usageCurrency: "usd",
  plans: [
    testPlan("free", { name: "Free", quotas: { projects: 2, api_keys: 2 } }),
    testPlan("pro", {
      name: "Pro",
      trialDays: 14,
      monthlyCredits: "1000",
      price: { amountMinor: 4900, currency: "usd", interval: "month" },
      quotas: { projects: 20, api_keys: 5, members: null },
      stripePriceId: PRO_PRICE,
    }),
    testPlan("team", { name: "Team", monthlyCredits: "5000", quotas: { api_keys: 50 } }),
  ],
  defaultPlan: "pro",
  fallbackPlan: "free",
};

const clock = createManualClock(new Date("2027-05-03T09:00:00.000Z"));
let t: TestContext;

beforeAll(async () => {
  t = await createTestContext({
    catalog,
    clock,
    stripe: { secretKey: undefined, webhookSecret: WEBHOOK_SECRET, apiBase: undefined },
  });
});
afterAll(async () => {
  await t.close();
});

type StoredEvent = { id: string; type: WebhookEventType; sequence: number; data: unknown; created_at: Date };

/**
 * The organization's events in sequence order, after checking the numbering is 1..n without gaps and every
 * envelope (as deliveries carry it) passes its type's schema.
 */
async function eventsOf(orgId: string): Promise<StoredEvent[]> {
  const { rows } = await t.database.pool.query<StoredEvent & { sequence: string | number }>(
    "SELECT id, type, sequence, data, created_at FROM webhook_events WHERE org_id = $1 ORDER BY sequence",
    [orgId],
  );
  const events = rows.map((r) => ({ ...r, sequence: Number(r.sequence) }));
  expect(events.map((e) => e.sequence)).toEqual(events.map((_, i) => i + 1));
  for (const e of events) {
    const envelope = {
      id: e.id,
      type: e.type,
      created_at: e.created_at.toISOString(),
      sequence: e.sequence,
      data: e.data,
    };
    const parsed = webhookEventSchema(e.type).safeParse(envelope);
    if (!parsed.success) {
      throw new Error(`${e.type} does not match its schema: ${JSON.stringify(parsed.error.issues)}`);
    }
    // The schemas keep only the fields they name: a field emitted but undocumented would be missing here.
    expect(parsed.data, e.type).toEqual(envelope);
  }
  return events;
}

/** The one event of `type` the organization has (fails on none or several). */
async function onlyEvent(orgId: string, type: WebhookEventType): Promise<Record<string, unknown>> {
  const matching = (await eventsOf(orgId)).filter((e) => e.type === type);
  expect(matching.map((e) => e.type)).toEqual([type]);
  return matching[0]?.data as Record<string, unknown>;
}

async function countOf(orgId: string, type: WebhookEventType): Promise<number> {
  return (await eventsOf(orgId)).filter((e) => e.type === type).length;
}

function createKeyRequest(orgId: string, body: Record<string, unknown> = {}) {
  return t.request<{ id: string; key: string }>("POST", `/v1/organizations/${orgId}/api-keys`, {
    body: { name: uniqueName("key"), ...body },
  });
}

// ---------------------------------------------------------------------------------------------------

describe("organization events", () => {
  it("organization.updated: one event with the changed fields; a PATCH that fails or changes nothing emits none", async () => {
    const org = await t.createOrg();
    const other = await t.createOrg();
    const before = (await eventsOf(org.id)).length;

    // A slug another organization holds: 409, and the transaction's event goes with it.
    const conflict = await t.request("PATCH", `/v1/organizations/${org.id}`, {
      body: { billing_email: "billing@acme.test", slug: other.slug },
    });
    expectStatus(conflict, 409);
    expect((await eventsOf(org.id)).length).toBe(before);

    const email = `${uniqueName("billing")}@acme.test`;
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}`, { body: { billing_email: email } }),
      200,
    );
    // The same value again changes nothing: no second event.
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}`, { body: { billing_email: email } }),
      200,
    );
    const data = await onlyEvent(org.id, "organization.updated");
    expect(data).toMatchObject({
      org_id: org.id,
      organization: { id: org.id, billing_email: email, status: "active" },
      changes: { billing_email: { from: null, to: email } },
    });
    expect(Object.keys(data.changes as object)).toEqual(["billing_email"]);
  });

  it("organization.suspended and organization.unsuspended: one each, with the reason", async () => {
    const org = await t.createOrg();
    expectStatus(
      await t.request("POST", `/v1/organizations/${org.id}/suspend`, { body: { reason: "Unpaid invoices" } }),
      200,
    );
    // Suspending again is refused (409) and emits nothing.
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`, { body: {} }), 409);
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/unsuspend`, { body: {} }), 200);
    expect(await onlyEvent(org.id, "organization.suspended")).toMatchObject({
      org_id: org.id,
      organization: { status: "suspended" },
      reason: "Unpaid invoices",
      suspended_at: clock.now().toISOString(),
    });
    expect(await onlyEvent(org.id, "organization.unsuspended")).toMatchObject({
      organization: { status: "active" },
    });
  });

  it("organization.deleted: one event, also when deleted twice", async () => {
    const org = await t.createOrg();
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}`), 200);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}`), 200);
    expect(await onlyEvent(org.id, "organization.deleted")).toMatchObject({
      organization: { id: org.id, status: "deleted" },
      deleted_at: clock.now().toISOString(),
    });
  });
});

describe("member and invitation events", () => {
  it("member.added when a signed-in user creates an organization (as its owner)", async () => {
    const person = await t.signIn();
    const res = await t.request<{ id: string }>("POST", "/v1/organizations", {
      key: person.token,
      body: { name: uniqueName("mine") },
    });
    expectStatus(res, 201);
    expect(await onlyEvent(res.body.id, "member.added")).toEqual({
      org_id: res.body.id,
      member: { user_id: person.userId, role: "owner", project_ids: null },
      source: "organization_created",
      invitation_id: null,
    });
    // Born with the organization: its subscription, in the same transaction.
    await onlyEvent(res.body.id, "subscription.created");
  });

  it("invitation.created, then invitation.accepted and member.added when the invitee accepts", async () => {
    const org = await t.createOrg();
    const invitee = await t.signIn();
    const email = `${invitee.subject}@example.test`;
    const created = await t.request<{ id: string }>("POST", `/v1/organizations/${org.id}/invitations`, {
      body: { email, role: "admin" },
    });
    expectStatus(created, 201);
    const invitation = await onlyEvent(org.id, "invitation.created");
    expect(invitation).toMatchObject({
      org_id: org.id,
      invitation: { id: created.body.id, email, role: "admin", status: "pending", project_ids: null },
    });
    expect(JSON.stringify(invitation)).not.toMatch(/token|hash/i);

    const { rows } = await t.database.pool.query<{ text_body: string }>(
      "SELECT text_body FROM mail_outbox WHERE org_id = $1 AND to_address = $2",
      [org.id, email],
    );
    const token = /#token=([A-Za-z0-9_-]+)/.exec(rows[0]?.text_body ?? "")?.[1];
    expect(token).toBeDefined();
    expectStatus(
      await t.request("POST", "/v1/invitations/accept", { key: invitee.token, body: { token } }),
      200,
    );
    // A second accept of the same token is refused and emits nothing.
    expectStatus(
      await t.request("POST", "/v1/invitations/accept", { key: invitee.token, body: { token } }),
      404,
    );
    expect(await onlyEvent(org.id, "invitation.accepted")).toMatchObject({
      invitation: { id: created.body.id, status: "accepted" },
      user_id: invitee.userId,
    });
    expect(await onlyEvent(org.id, "member.added")).toEqual({
      org_id: org.id,
      member: { user_id: invitee.userId, role: "admin", project_ids: null },
      source: "invitation",
      invitation_id: created.body.id,
    });
  });

  it("member.role_changed and member.removed; the keys the member created are revoked with api_key.revoked", async () => {
    const org = await t.createOrg();
    const admin = await t.createMember(org.id, "admin");
    const key = await t.request<{ id: string }>("POST", `/v1/organizations/${org.id}/api-keys`, {
      key: admin.token,
      body: { name: uniqueName("key"), scopes: ["projects:read"] },
    });
    expectStatus(key, 201);

    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}/members/${admin.userId}`, {
        body: { role: "member" },
      }),
      200,
    );
    // The same role again: nothing changes, no event.
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}/members/${admin.userId}`, {
        body: { role: "member" },
      }),
      200,
    );
    expect(await onlyEvent(org.id, "member.role_changed")).toEqual({
      org_id: org.id,
      member: { user_id: admin.userId, role: "member", project_ids: null },
      previous_role: "admin",
      changes: { role: { from: "admin", to: "member" } },
    });

    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/members/${admin.userId}`), 204);
    expect(await onlyEvent(org.id, "member.removed")).toEqual({
      org_id: org.id,
      member: { user_id: admin.userId, role: "member", project_ids: null },
      left: false,
      revoked_api_key_ids: [key.body.id],
    });
    expect(await onlyEvent(org.id, "api_key.revoked")).toMatchObject({
      api_key: { id: key.body.id, created_by: admin.userId },
      reason: "creator_removed",
    });
  });
});

describe("API key events", () => {
  it("api_key.created, api_key.rotated and api_key.revoked, never with key material", async () => {
    const org = await t.createOrg();
    const created = await createKeyRequest(org.id, { scopes: ["projects:read"] });
    expectStatus(created, 201);
    const rotated = await t.request<{ id: string; key: string }>(
      "POST",
      `/v1/organizations/${org.id}/api-keys/${created.body.id}/rotate`,
      { body: { expire_previous_in_seconds: 3600 } },
    );
    expectStatus(rotated, 201);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${rotated.body.id}`), 200);
    // Revoking a revoked key changes nothing: no second event.
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${rotated.body.id}`), 200);

    expect(await onlyEvent(org.id, "api_key.created")).toMatchObject({
      api_key: { id: created.body.id, scopes: ["projects:read"], revoked_at: null },
    });
    expect(await onlyEvent(org.id, "api_key.rotated")).toMatchObject({
      api_key: { id: rotated.body.id, rotated_from: created.body.id },
      previous_api_key_id: created.body.id,
      previous_expires_at: new Date(clock.now().getTime() + 3600_000).toISOString(),
    });
    expect(await onlyEvent(org.id, "api_key.revoked")).toMatchObject({
      api_key: { id: rotated.body.id, revoked_at: clock.now().toISOString() },
      reason: "revoked",
    });
    const all = JSON.stringify(await eventsOf(org.id));
    for (const plaintext of [created.body.key, rotated.body.key]) {
      expect(all).not.toContain(plaintext);
      expect(all).not.toContain(plaintext.slice(-4));
    }
    expect(all).not.toMatch(/hash|last_four|key_prefix/);
  });

  it("api_key.expiring: once per key expiring within 7 days, again only after its expiry changes", async () => {
    const org = await t.createOrg();
    const soon = await createKeyRequest(org.id, {
      expires_at: new Date(clock.now().getTime() + 3 * DAY).toISOString(),
    });
    const later = await createKeyRequest(org.id, {
      expires_at: new Date(clock.now().getTime() + 30 * DAY).toISOString(),
    });
    expectStatus(soon, 201);
    expectStatus(later, 201);
    // A rotated-out key ends within the week by the rotation's choice: it is not announced.
    const rotatedOut = await createKeyRequest(org.id);
    expectStatus(
      await t.request("POST", `/v1/organizations/${org.id}/api-keys/${rotatedOut.body.id}/rotate`, {
        body: { expire_previous_in_seconds: 3600 },
      }),
      201,
    );

    await t.services.apiKeys.sweepExpiring();
    await t.services.apiKeys.sweepExpiring();
    expect(await onlyEvent(org.id, "api_key.expiring")).toMatchObject({
      api_key: { id: soon.body.id },
      expires_at: new Date(clock.now().getTime() + 3 * DAY).toISOString(),
    });

    // Extended past the window, then near again: announced a second time.
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}/api-keys/${soon.body.id}`, {
        body: { expires_at: new Date(clock.now().getTime() + 20 * DAY).toISOString() },
      }),
      200,
    );
    await t.services.apiKeys.sweepExpiring();
    expect(await countOf(org.id, "api_key.expiring")).toBe(1);
    clock.advance(14 * DAY);
    try {
      await t.services.apiKeys.sweepExpiring();
      const expiring = (await eventsOf(org.id)).filter((e) => e.type === "api_key.expiring");
      expect(expiring.map((e) => (e.data as { api_key: { id: string } }).api_key.id)).toEqual([
        soon.body.id,
        soon.body.id,
      ]);
    } finally {
      clock.advance(-14 * DAY);
    }
  });
});

describe("subscription events", () => {
  it("subscription.created with the organization, subscription.updated on a plan change, subscription.canceled", async () => {
    const org = await t.createOrg();
    expect(await onlyEvent(org.id, "subscription.created")).toMatchObject({
      subscription: { plan: "pro", status: "trialing", provider: null },
    });
    expectStatus(
      await t.request("PUT", `/v1/organizations/${org.id}/subscription`, { body: { plan: "team" } }),
      200,
    );
    // The same plan again changes nothing.
    expectStatus(
      await t.request("PUT", `/v1/organizations/${org.id}/subscription`, { body: { plan: "team" } }),
      200,
    );
    const updated = await onlyEvent(org.id, "subscription.updated");
    expect(updated).toMatchObject({ subscription: { plan: "team", status: "active" } });
    expect(Object.keys(updated.changes as object).sort()).toEqual(["plan_version_id", "status", "trial_end"]);

    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/subscription`), 200);
    expect(await onlyEvent(org.id, "subscription.canceled")).toMatchObject({
      subscription: { plan: "team", cancel_at_period_end: true },
      changes: { cancel_at_period_end: { from: false, to: true } },
    });
  });

  it("subscription.trial_ending from the trial sweep, once", async () => {
    const org = await t.createOrg();
    clock.advance(12 * DAY);
    try {
      await t.services.alerts.sweepTrialsEnding();
      await t.services.alerts.sweepTrialsEnding();
      const data = await onlyEvent(org.id, "subscription.trial_ending");
      expect(data).toMatchObject({
        trial_end: new Date(clock.now().getTime() + 2 * DAY).toISOString(),
        trial_plan: "pro",
        at_trial_end: "continues",
        next_plan: "pro",
      });
      const [alert] = await t.database.stores.alerts.list({ orgId: org.id, limit: 10, after: undefined });
      expect(data.alert_id).toBe(alert?.id);
    } finally {
      clock.advance(-12 * DAY);
    }
  });
});

describe("credit, spending and usage events", () => {
  async function authorize(orgKey: string, credits: string) {
    const res = await t.request<{ allowed: boolean }>("POST", "/v1/authorize", {
      body: { key: orgKey, category: "search", credits },
    });
    expectStatus(res, 200);
    expect(res.body.allowed).toBe(true);
  }

  it("credits.granted for a grant (not for the plan's allocation)", async () => {
    const org = await t.createOrg();
    const res = await t.request<{ id: string }>("POST", `/v1/organizations/${org.id}/credits/grants`, {
      body: { amount: "500", source: "purchase", reference: uniqueName("pi") },
    });
    expectStatus(res, 201);
    expect(await onlyEvent(org.id, "credits.granted")).toMatchObject({
      grant: { amount: "500", source: "purchase" },
      // The period's allocation of 1,000 plus the grant.
      balance: "1500",
    });
  });

  it("credits.low once the balance falls below 10 % of the allocation, once per period", async () => {
    const { org, key } = await t.createOrgWithKey();
    await authorize(key, "950");
    await authorize(key, "10");
    expect(await onlyEvent(org.id, "credits.low")).toMatchObject({
      balance: "50",
      allocation: "1000",
      percent: 10,
    });
  });

  it("spending_limit.soft_reached and spending_limit.hard_reached, once each", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(
      await t.request("PUT", `/v1/organizations/${org.id}/spending-limits`, {
        body: { unit: "credits", soft_limit: "100", hard_limit: "200", hard_limit_action: "alert" },
      }),
      200,
    );
    await authorize(key, "150");
    expect(await onlyEvent(org.id, "spending_limit.soft_reached")).toMatchObject({
      used: "150",
      limit: "100",
    });
    expect(await countOf(org.id, "spending_limit.hard_reached")).toBe(0);
    await authorize(key, "100");
    await authorize(key, "1");
    expect(await onlyEvent(org.id, "spending_limit.hard_reached")).toMatchObject({
      used: "250",
      limit: "200",
      action: "alert",
    });
    expect(await countOf(org.id, "spending_limit.soft_reached")).toBe(1);
  });

  it("usage.period_reset when a new credit period opens (not for the account's first)", async () => {
    const org = await t.createOrg();
    await t.services.credits.settle(org.id);
    expect(await countOf(org.id, "usage.period_reset")).toBe(0);
    clock.advance(32 * DAY);
    try {
      await t.services.credits.settle(org.id);
      await t.services.credits.settle(org.id);
      const data = await onlyEvent(org.id, "usage.period_reset");
      expect(data.allocation).toBe("1000");
      expect(new Date(String(data.period_start)).getTime()).toBeLessThanOrEqual(clock.now().getTime());
      expect(new Date(String(data.period_end)).getTime()).toBeGreaterThan(clock.now().getTime());
    } finally {
      clock.advance(-32 * DAY);
    }
  });
});

describe("quota events", () => {
  it("quota.warning at 80 %, quota.critical at 95 %, quota.exceeded when a create fills the quota", async () => {
    const org = await t.createOrg();
    for (let i = 0; i < 3; i++) {
      expectStatus(await createKeyRequest(org.id), 201);
    }
    expect(await countOf(org.id, "quota.warning")).toBe(0);
    expectStatus(await createKeyRequest(org.id), 201); // 4 of 5: 80 %
    expect(await onlyEvent(org.id, "quota.warning")).toMatchObject({
      quota: "api_keys",
      used: 4,
      limit: 5,
      plan: "pro",
      threshold_percent: 80,
    });
    expect(await countOf(org.id, "quota.exceeded")).toBe(0);
    expectStatus(await createKeyRequest(org.id), 201); // 5 of 5: 100 %
    expect(await onlyEvent(org.id, "quota.critical")).toMatchObject({ used: 5, threshold_percent: 95 });
    expect(await onlyEvent(org.id, "quota.exceeded")).toMatchObject({
      quota: "api_keys",
      used: 5,
      limit: 5,
      threshold_percent: 100,
      alert_id: null,
    });
    // Refused at the limit: the create rolls back, with no event.
    expectStatus(await createKeyRequest(org.id), 403);
    expect(await countOf(org.id, "quota.exceeded")).toBe(1);
  });
});

describe("invoice events from Stripe", () => {
  /** Signed at the server's (manual) clock: Stripe's signatures are refused five minutes off. */
  const signature = (payload: string) =>
    Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: WEBHOOK_SECRET,
      timestamp: Math.floor(clock.now().getTime() / 1000),
    });
  const ids = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;

  async function deliver(type: string, object: Record<string, unknown>): Promise<string> {
    const event = {
      id: ids("evt"),
      type,
      created: Math.floor(clock.now().getTime() / 1000),
      data: { object },
    };
    const payload = JSON.stringify(event);
    const res = await t.request<{ event_id: string }>("POST", "/v1/webhooks/stripe", {
      key: undefined,
      rawBody: payload,
      headers: {
        "Content-Type": "application/json",
        "Stripe-Signature": signature(payload),
      },
    });
    expectStatus(res, 200);
    return event.id;
  }

  async function stripeOrg(): Promise<{ org: Organization; customerId: string; subId: string }> {
    const customerId = ids("cus");
    const org = await t.createOrg({ externalIds: { stripe_customer_id: customerId } });
    return { org, customerId, subId: ids("sub") };
  }

  it("invoice.created, invoice.paid and invoice.payment_failed, once per Stripe event", async () => {
    const { org, customerId, subId } = await stripeOrg();
    const invoice = {
      id: ids("in"),
      object: "invoice",
      customer: customerId,
      created: Math.floor(clock.now().getTime() / 1000),
      amount_due: 4900,
      amount_paid: 0,
      currency: "usd",
      hosted_invoice_url: "https://invoice.stripe.com/i/acct_test/inv_test",
      parent: { type: "subscription_details", subscription_details: { subscription: subId } },
    };
    const created = await deliver("invoice.created", invoice);
    const failed = await deliver("invoice.payment_failed", invoice);
    const paid = await deliver("invoice.paid", invoice);
    expect(await onlyEvent(org.id, "invoice.created")).toMatchObject({
      invoice_id: invoice.id,
      amount_due: 4900,
      amount_paid: 0,
      currency: "usd",
      hosted_invoice_url: invoice.hosted_invoice_url,
      customer_id: customerId,
      subscription_id: subId,
      invoice_created_at: new Date(invoice.created * 1000).toISOString(),
      stripe_event_id: created,
    });
    expect(await onlyEvent(org.id, "invoice.payment_failed")).toMatchObject({ stripe_event_id: failed });
    expect(await onlyEvent(org.id, "invoice.paid")).toMatchObject({ stripe_event_id: paid });
  });

  it("a replayed Stripe event emits nothing more; a subscription from Stripe updates the subscription", async () => {
    const { org, customerId, subId } = await stripeOrg();
    const now = Math.floor(clock.now().getTime() / 1000);
    const object = {
      id: subId,
      object: "subscription",
      customer: customerId,
      status: "active",
      metadata: { org_id: org.id },
      items: {
        object: "list",
        data: [
          {
            id: ids("si"),
            price: { id: PRO_PRICE, object: "price" },
            quantity: 3,
            current_period_start: now,
            current_period_end: now + 30 * 86_400,
          },
        ],
      },
      cancel_at_period_end: false,
    };
    const event = {
      id: ids("evt"),
      type: "customer.subscription.updated",
      created: now,
      data: { object },
    };
    const payload = JSON.stringify(event);
    for (let i = 0; i < 2; i++) {
      const res = await t.request("POST", "/v1/webhooks/stripe", {
        key: undefined,
        rawBody: payload,
        headers: {
          "Content-Type": "application/json",
          "Stripe-Signature": signature(payload),
        },
      });
      expectStatus(res, 200);
    }
    expect(await onlyEvent(org.id, "subscription.updated")).toMatchObject({
      subscription: { plan: "pro", status: "active", seats: 3, provider: "stripe" },
      changes: { seats: { from: 1, to: 3 } },
    });
  });
});

describe("atomicity", () => {
  it("an alert recorded in a transaction that then fails leaves neither the alert nor its event", async () => {
    const org = await t.createOrg();
    const before = (await eventsOf(org.id)).length;
    await expect(
      t.database.transactor.transaction(async (stores) => {
        const alert = await recordAlert(
          stores,
          {
            orgId: org.id,
            type: "quota_80",
            periodStart: clock.now(),
            details: { quota: "projects", used: 16, limit: 20, plan: "pro" },
          },
          clock,
        );
        expect(alert).toBeDefined();
        throw new Error("the change failed after its event was written");
      }),
    ).rejects.toThrow("the change failed");
    expect((await eventsOf(org.id)).length).toBe(before);
    expect(await t.database.stores.alerts.list({ orgId: org.id, limit: 10, after: undefined })).toEqual([]);

    // The numbering continues without a gap: the next committed event takes the next number.
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}`, { body: { billing_name: "Acme" } }),
      200,
    );
    const events = await eventsOf(org.id);
    expect(events.at(-1)).toMatchObject({ type: "organization.updated", sequence: before + 1 });
  });
});

describe("what a receiver gets", () => {
  it("every delivered body passes its type's schema and verifies with standardwebhooks, webhook.test included", async () => {
    // The system clock here: standardwebhooks refuses signatures timestamped five minutes off its own clock.
    const live = await createTestContext({ catalog });
    const received: { body: string; headers: Record<string, string> }[] = [];
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(req.headers)) {
          if (typeof value === "string") {
            headers[name] = value;
          }
        }
        received.push({ body: Buffer.concat(chunks).toString("utf8"), headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = receiver.address() as AddressInfo;
      const org = await live.createOrg();
      const { endpoint, secret } = await live.services.webhooks.createEndpoint(live.operatorCtx, org.id, {
        url: `http://127.0.0.1:${port}/hooks`,
        description: null,
        eventTypes: [],
        isActive: true,
      });
      expectStatus(
        await live.request("PATCH", `/v1/organizations/${org.id}`, { body: { display_name: "Acme Search" } }),
        200,
      );
      const key = await live.request<{ id: string }>("POST", `/v1/organizations/${org.id}/api-keys`, {
        body: { name: uniqueName("key") },
      });
      expectStatus(key, 201);
      expectStatus(await live.request("DELETE", `/v1/organizations/${org.id}/api-keys/${key.body.id}`), 200);
      const test = await live.services.webhooks.sendTest(live.operatorCtx, org.id, endpoint.id);
      expect(test.state).toBe("delivered");
      for (let i = 0; i < 50 && received.length < 4; i++) {
        await live.services.webhooks.deliverDue();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }

      const verifier = new Webhook(secret);
      const types = received.map(({ body, headers }) => {
        const envelope = verifier.verify(body, headers) as { type: WebhookEventType };
        const parsed = webhookEventSchema(envelope.type).safeParse(envelope);
        expect(parsed.success, body).toBe(true);
        expect(parsed.data).toEqual(envelope);
        return envelope.type;
      });
      expect(types.sort()).toEqual([
        "api_key.created",
        "api_key.revoked",
        "organization.updated",
        "webhook.test",
      ]);
    } finally {
      await new Promise((resolve) => receiver.close(resolve));
      await live.close();
    }
  });
});

describe("the catalog in the OpenAPI document", () => {
  it("has a component schema and a `webhooks` entry for every event type", () => {
    const doc = openApiDocument(buildApi());
    const schemas = doc.components?.schemas ?? {};
    const webhooks = doc.webhooks ?? {};
    for (const type of WEBHOOK_EVENT_TYPES) {
      const name = webhookEventComponentName(type);
      expect(schemas[name], name).toBeDefined();
      expect(webhooks[type]?.post?.requestBody, type).toBeDefined();
      expect(JSON.stringify(schemas[name])).toContain(`"enum":["${type}"]`);
    }
  });
});
