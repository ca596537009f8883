/**
 * Checkout and portal links through the Stripe SDK. Stripe's servers cannot be reached from here, so the
 * SDK is pointed (STRIPE_API_BASE) at a LOCAL FAKE of the three Stripe endpoints Orgplane calls —
 * customers, checkout.sessions and billing_portal.sessions — started by this file. It is the only stand-in
 * in these tests; everything on Orgplane's side (HTTP, services, PostgreSQL) is real.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog } from "../../src/domain/catalog/catalog.types.ts";
import { loadPreset } from "../../src/infra/catalog-file.ts";
import { createTestContext, expectStatus, type TestContext } from "../harness.ts";

const SECRET_KEY = `sk_test_${randomBytes(16).toString("hex")}`;

type FakeRequest = { path: string; params: URLSearchParams; idempotencyKey: string | undefined };

type FakeStripe = { url: string; requests: FakeRequest[]; close(): Promise<void> };

/** The few Stripe endpoints Orgplane uses, answering like Stripe (form-encoded in, JSON out). */
async function startFakeStripe(): Promise<FakeStripe> {
  const requests: FakeRequest[] = [];
  // Stripe replays the first answer for a repeated Idempotency-Key; so does the fake, for customers.
  const customersByKey = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      const path = (req.url ?? "").split("?")[0] ?? "";
      const header = req.headers["idempotency-key"];
      const idempotencyKey = typeof header === "string" ? header : undefined;
      requests.push({ path, params, idempotencyKey });
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json", "Request-Id": "req_fake" });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${SECRET_KEY}`) {
        reply(401, { error: { type: "invalid_request_error", message: "Invalid API Key provided" } });
        return;
      }
      if (req.method === "POST" && path === "/v1/customers") {
        const known = idempotencyKey === undefined ? undefined : customersByKey.get(idempotencyKey);
        const id = known ?? `cus_${randomBytes(7).toString("hex")}`;
        if (idempotencyKey !== undefined) {
          customersByKey.set(idempotencyKey, id);
        }
        reply(200, { id, object: "customer", name: params.get("name"), metadata: {} });
        return;
      }
      if (req.method === "POST" && path === "/v1/checkout/sessions") {
        if (params.get("line_items[0][price]") === "price_refused") {
          reply(400, {
            error: { type: "invalid_request_error", code: "resource_missing", message: "No such price" },
          });
          return;
        }
        const id = `cs_test_${randomBytes(8).toString("hex")}`;
        reply(200, { id, object: "checkout.session", url: `https://checkout.stripe.test/c/pay/${id}` });
        return;
      }
      if (req.method === "POST" && path === "/v1/billing_portal/sessions") {
        const id = `bps_${randomBytes(8).toString("hex")}`;
        reply(200, {
          id,
          object: "billing_portal.session",
          url: `https://billing.stripe.test/p/session/${id}`,
        });
        return;
      }
      reply(404, { error: { type: "invalid_request_error", message: `Unrecognized request URL (${path})` } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let t: TestContext;
let fake: FakeStripe;

async function catalogWithPrices(): Promise<Catalog> {
  const preset = await loadPreset("multimodal-search");
  const prices: Record<string, string> = { pro: "price_test_pro", team: "price_refused" };
  return { ...preset, plans: preset.plans.map((p) => ({ ...p, stripePriceId: prices[p.key] ?? null })) };
}

beforeAll(async () => {
  fake = await startFakeStripe();
  t = await createTestContext({
    catalog: await catalogWithPrices(),
    stripe: { secretKey: SECRET_KEY, webhookSecret: undefined, apiBase: fake.url },
  });
});

afterAll(async () => {
  await t?.close();
  await fake?.close();
});

const checkoutBody = {
  plan: "pro",
  success_url: "https://app.example.test/billing/done",
  cancel_url: "https://app.example.test/billing",
};

describe("POST /v1/organizations/{org_id}/billing/checkout-session", () => {
  it("creates the Stripe customer on first need, stores it, and returns the Checkout URL", async () => {
    const { org, key } = await t.createOrgWithKey({ billingEmail: "billing@example.test" });
    const before = fake.requests.length;
    const res = await t.request<{ url: string }>(
      "POST",
      `/v1/organizations/${org.id}/billing/checkout-session`,
      {
        key,
        body: checkoutBody,
      },
    );
    expectStatus(res, 200);
    expect(res.body.url).toMatch(/^https:\/\/checkout\.stripe\.test\/c\/pay\/cs_test_/);

    const calls = fake.requests.slice(before);
    expect(calls.map((c) => c.path)).toEqual(["/v1/customers", "/v1/checkout/sessions"]);
    const [customer, session] = calls;
    expect(customer?.idempotencyKey).toBe(`orgplane-customer-${org.id}`);
    expect(customer?.params.get("metadata[org_id]")).toBe(org.id);
    expect(customer?.params.get("email")).toBe("billing@example.test");
    expect(session?.params.get("mode")).toBe("subscription");
    expect(session?.params.get("line_items[0][price]")).toBe("price_test_pro");
    expect(session?.params.get("client_reference_id")).toBe(org.id);
    expect(session?.params.get("subscription_data[metadata][org_id]")).toBe(org.id);
    expect(session?.params.get("success_url")).toBe(checkoutBody.success_url);

    const stored = await t.database.stores.orgs.find(org.id);
    const customerId = stored?.externalIds.stripe_customer_id;
    expect(customerId).toMatch(/^cus_/);
    expect(session?.params.get("customer")).toBe(customerId);

    // The second time, the stored customer is used: no second customer at Stripe.
    const again = await t.request("POST", `/v1/organizations/${org.id}/billing/checkout-session`, {
      key,
      body: checkoutBody,
    });
    expectStatus(again, 200);
    expect(fake.requests.slice(before + 2).map((c) => c.path)).toEqual(["/v1/checkout/sessions"]);

    const audit = await t.request<{ data: { action: string; changes: Record<string, unknown> }[] }>(
      "GET",
      `/v1/organizations/${org.id}/audit-events`,
    );
    const linked = audit.body.data.filter(
      (a) => a.action === "organization.updated" && "external_ids" in a.changes,
    );
    expect(linked).toHaveLength(1);
  });

  it("refuses a plan without a Stripe price: 400 validation_failed naming plan", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await t.request("POST", `/v1/organizations/${org.id}/billing/checkout-session`, {
      key,
      body: { ...checkoutBody, plan: "free" },
    });
    expectStatus(res, 400);
    expect(res.body).toMatchObject({ code: "validation_failed", errors: [{ path: "plan" }] });
  });

  it("turns Stripe's refusal into 502 billing_provider_error without quoting Stripe's message", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await t.request("POST", `/v1/organizations/${org.id}/billing/checkout-session`, {
      key,
      body: { ...checkoutBody, plan: "team" },
    });
    expectStatus(res, 502);
    expect(res.body).toMatchObject({ code: "billing_provider_error" });
    expect(res.text).not.toContain("No such price");
  });

  it("needs billing:write", async () => {
    const org = await t.createOrg();
    const key = await t.createKey(org.id, ["billing:read"]);
    const res = await t.request("POST", `/v1/organizations/${org.id}/billing/checkout-session`, {
      key,
      body: checkoutBody,
    });
    expectStatus(res, 403);
    expect(res.body).toMatchObject({ code: "insufficient_scope" });
  });
});

describe("POST /v1/organizations/{org_id}/billing/portal-session", () => {
  it("returns the portal URL for the organization's customer", async () => {
    const { org, key } = await t.createOrgWithKey();
    const before = fake.requests.length;
    const res = await t.request<{ url: string }>(
      "POST",
      `/v1/organizations/${org.id}/billing/portal-session`,
      {
        key,
        body: { return_url: "https://app.example.test/settings" },
      },
    );
    expectStatus(res, 200);
    expect(res.body.url).toMatch(/^https:\/\/billing\.stripe\.test\/p\/session\//);
    const calls = fake.requests.slice(before);
    expect(calls.map((c) => c.path)).toEqual(["/v1/customers", "/v1/billing_portal/sessions"]);
    const stored = await t.database.stores.orgs.find(org.id);
    expect(calls[1]?.params.get("customer")).toBe(stored?.externalIds.stripe_customer_id);
    expect(calls[1]?.params.get("return_url")).toBe("https://app.example.test/settings");
  });

  it("refuses a return_url that is not an http(s) URL: 400", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await t.request("POST", `/v1/organizations/${org.id}/billing/portal-session`, {
      key,
      body: { return_url: "javascript:alert(1)" },
    });
    expectStatus(res, 400);
  });
});

describe("without STRIPE_SECRET_KEY", () => {
  it("answers 409 billing_provider_not_configured", async () => {
    const bare = await createTestContext();
    try {
      const { org, key } = await bare.createOrgWithKey();
      for (const [path, body] of [
        [`/v1/organizations/${org.id}/billing/checkout-session`, checkoutBody],
        [`/v1/organizations/${org.id}/billing/portal-session`, { return_url: "https://app.example.test/" }],
      ] as const) {
        const res = await bare.request("POST", path, { key, body });
        expectStatus(res, 409);
        expect(res.body).toMatchObject({ code: "billing_provider_not_configured" });
      }
    } finally {
      await bare.close();
    }
  });
});

describe("secrets", () => {
  it("never logs the Stripe secret key", () => {
    expect(t.logLines.join("")).not.toContain(SECRET_KEY);
  });
});
