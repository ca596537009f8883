import type { z } from "@hono/zod-openapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import type { OrganizationSchema } from "../../src/http/schemas/organization.ts";
import { createTestContext, expectStatus, type ListBody, type TestContext, uniqueName } from "../harness.ts";

type Org = z.infer<typeof OrganizationSchema>;

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

async function createOrg(body: Record<string, unknown> = {}): Promise<Org> {
  const res = await t.request<Org>("POST", "/v1/organizations", { body: { name: uniqueName(), ...body } });
  expectStatus(res, 201);
  return res.body;
}

/** The organization part of GET's view (plan, subscription and quotas are tested in subscriptions.test.ts). */
async function getOrg(id: string, key: string = t.operatorKey): Promise<Org> {
  const res = await t.request<Org & { plan: unknown; subscription: unknown; quotas: unknown }>(
    "GET",
    `/v1/organizations/${id}`,
    { key },
  );
  expectStatus(res, 200);
  const { plan: _plan, subscription: _subscription, quotas: _quotas, ...org } = res.body;
  return org;
}

async function patchOrg(id: string, body: Record<string, unknown>): Promise<Org> {
  const res = await t.request<Org>("PATCH", `/v1/organizations/${id}`, { body });
  expectStatus(res, 200);
  return res.body;
}

/** Every organization id a listing yields, walking every page. */
async function listAllIds(query: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const cursorParam: string = cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`;
    const res = await t.request<ListBody<Org>>(
      "GET",
      `/v1/organizations?limit=${limit}${query}${cursorParam}`,
    );
    expectStatus(res, 200);
    pages++;
    expect(res.body.data.length, res.text).toBeLessThanOrEqual(limit);
    expect(res.body.has_more, res.text).toBe(res.body.next_cursor !== null);
    ids.push(...res.body.data.map((o) => o.id));
    cursor = res.body.next_cursor;
  } while (cursor !== null && pages < 1000);
  return { ids, pages };
}

const FULL_BODY = {
  display_name: "Acme Corporation GmbH",
  logo_url: "https://cdn.example.com/acme.png",
  billing_email: "billing@acme.example",
  billing_name: "Acme Accounts Payable",
  billing_address: {
    line1: "1 Main Street",
    line2: "Floor 3",
    city: "Berlin",
    postal_code: "10115",
    state: "BE",
    country: "de",
  },
  currency: "EUR",
  metadata: { plan_hint: "enterprise", seats: 12, tags: ["a", "b"], nested: { ok: true } },
  is_personal: true,
  registerable: false,
  partner_configuration: { theme: "dark", white_label: true },
  external_ids: {
    stripe_customer_id: "cus_123",
    hubspot_company_id: "hs_456",
    clerk_organization_id: "org_clerk_789",
    clerk_organization_slug: "acme",
    vercel_installation_id: "icfg_abc",
  },
};

describe("creating an organization", () => {
  it("stores every organization-level field it is given and returns it", async () => {
    const slug = uniqueName("acme");
    const res = await t.request<Org>("POST", "/v1/organizations", {
      body: { name: "Acme Corporation", slug, ...FULL_BODY },
    });
    expectStatus(res, 201);
    const org = res.body;
    expect(org).toMatchObject({
      object: "organization",
      name: "Acme Corporation",
      slug,
      display_name: "Acme Corporation GmbH",
      logo_url: "https://cdn.example.com/acme.png",
      billing_email: "billing@acme.example",
      billing_name: "Acme Accounts Payable",
      // Country codes are upper case, currencies lower case, whatever the client sent.
      billing_address: { ...FULL_BODY.billing_address, country: "DE" },
      currency: "eur",
      metadata: FULL_BODY.metadata,
      is_personal: true,
      registerable: false,
      partner_configuration: FULL_BODY.partner_configuration,
      external_ids: FULL_BODY.external_ids,
      status: "active",
      suspended_at: null,
      suspended_reason: null,
      deleted_at: null,
      created_by: t.operatorCtx.principal.id,
    });
    expect(org.id).toMatch(/^org_[0-9a-z]{26}$/);
    expect(org.internal_id).toMatch(/^int_[0-9a-z]{26}$/);
    expect(org.internal_id).not.toBe(org.id);
    expect(new Date(org.created_at).toISOString()).toBe(org.created_at);
    expect(org.updated_at).toBe(org.created_at);

    expect(await getOrg(org.id)).toEqual(org);
  });

  it("fills in defaults for the fields it is not given", async () => {
    const org = await createOrg();
    expect(org).toMatchObject({
      display_name: null,
      logo_url: null,
      billing_email: null,
      billing_name: null,
      billing_address: null,
      currency: "usd",
      metadata: {},
      is_personal: false,
      registerable: true,
      partner_configuration: {},
      external_ids: {},
      status: "active",
    });
  });

  it("generates the slug from the name when none is given", async () => {
    const suffix = uniqueName("x");
    const org = await createOrg({ name: `Ünïcödé & Co. — ${suffix}!` });
    expect(org.slug).toBe(`unicode-co-${suffix}`);
  });

  it("suffixes a generated slug that another organization holds", async () => {
    const name = `Same Name ${uniqueName("n")}`;
    const first = await createOrg({ name });
    const second = await createOrg({ name });
    expect(second.slug).not.toBe(first.slug);
    expect(second.slug.startsWith(`${first.slug}-`), second.slug).toBe(true);
    expect(second.slug).toMatch(/-[0-9a-z]{6}$/);
  });

  it("refuses an explicit slug that another organization holds with 409 slug_taken", async () => {
    const slug = uniqueName("taken");
    await createOrg({ slug });
    for (const attempt of [slug, slug.toUpperCase()]) {
      const res = await t.request<ProblemBody>("POST", "/v1/organizations", {
        body: { name: uniqueName(), slug: attempt },
      });
      expectStatus(res, 409);
      expect(res.body.code, res.text).toBe("slug_taken");
      expect(res.headers.get("Content-Type")).toBe("application/problem+json");
    }
  });

  it("refuses unknown fields and invalid values with 400 naming the field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "x", plan: "pro" }, ""],
      [{ name: "x", billing_email: "not-an-email" }, "billing_email"],
      [{ name: "x", slug: "-bad-" }, "slug"],
      [{ name: "x", currency: "euro" }, "currency"],
      [{ name: "x", external_ids: { github_org: "x" } }, "external_ids"],
      [{ name: "   " }, "name"],
    ];
    for (const [body, path] of cases) {
      const res = await t.request<ProblemBody>("POST", "/v1/organizations", { body });
      expectStatus(res, 400);
      expect(res.body.code, res.text).toBe("validation_failed");
      expect(
        res.body.errors?.some((e) => e.path.startsWith(path)),
        res.text,
      ).toBe(true);
    }
  });

  it("is for the operator only: an org key gets 403 operator_only", async () => {
    const { key } = await t.createOrgWithKey();
    const res = await t.request<ProblemBody>("POST", "/v1/organizations", {
      key,
      body: { name: uniqueName() },
    });
    expectStatus(res, 403);
    expect(res.body.code, res.text).toBe("operator_only");
  });
});

describe("reading an organization", () => {
  it("answers 404 naming the id for an unknown or malformed id", async () => {
    for (const id of ["org_01jd0v4n6qf9yb5c8h2m3k7x1z", "nope", "key_01jd0v4n6qf9yb5c8h2m3k7x1z"]) {
      const res = await t.request<ProblemBody>("GET", `/v1/organizations/${id}`);
      expectStatus(res, 404);
      expect(res.body.code, res.text).toBe("not_found");
      expect(res.body.detail, res.text).toContain(`'${id}'`);
    }
  });

  it("shows an org key its own organization and hides every other one behind a 404", async () => {
    const { org, key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    expect((await getOrg(org.id, key)).id).toBe(org.id);
    const res = await t.request<ProblemBody>("GET", `/v1/organizations/${other.id}`, { key });
    expectStatus(res, 404);
    expect(res.body.code, res.text).toBe("not_found");
  });
});

describe("listing organizations", () => {
  it("pages through every organization newest first with limit and cursor", async () => {
    const created: string[] = [];
    for (let i = 0; i < 5; i++) {
      created.push((await createOrg()).id);
    }
    const { ids, pages } = await listAllIds("", 2);
    expect(new Set(ids).size, "no organization twice").toBe(ids.length);
    expect(pages).toBe(Math.ceil(ids.length / 2));
    expect(ids).toEqual([...ids].sort().reverse());
    const mine = ids.filter((id) => created.includes(id));
    expect(mine).toEqual([...created].reverse());
  });

  it("returns the first page with has_more and next_cursor, the last without", async () => {
    await createOrg();
    await createOrg();
    const first = await t.request<ListBody<Org>>("GET", "/v1/organizations?limit=1");
    expectStatus(first, 200);
    expect(first.body.data).toHaveLength(1);
    expect(first.body.has_more).toBe(true);
    expect(typeof first.body.next_cursor).toBe("string");

    const all = await t.request<ListBody<Org>>("GET", "/v1/organizations?limit=100");
    expectStatus(all, 200);
    const count = all.body.data.length;
    expect(count).toBeLessThan(100);
    expect(all.body.has_more).toBe(false);
    expect(all.body.next_cursor).toBeNull();

    const byDefault = await t.request<ListBody<Org>>("GET", "/v1/organizations");
    expectStatus(byDefault, 200);
    expect(byDefault.body.data).toHaveLength(Math.min(count, 20));
  });

  it("refuses a cursor of another collection with 400 invalid_cursor", async () => {
    const org = await t.createOrg();
    await t.createKey(org.id);
    await t.createKey(org.id);
    const keys = await t.request<ListBody<{ id: string }>>(
      "GET",
      `/v1/organizations/${org.id}/api-keys?limit=1`,
    );
    expectStatus(keys, 200);
    const keyCursor = keys.body.next_cursor;
    expect(keyCursor, keys.text).not.toBeNull();
    const res = await t.request<ProblemBody>(
      "GET",
      `/v1/organizations?cursor=${encodeURIComponent(String(keyCursor))}`,
    );
    expectStatus(res, 400);
    expect(res.body.code, res.text).toBe("invalid_cursor");
  });

  it("refuses a cursor it did not issue with 400 invalid_cursor", async () => {
    const forged = Buffer.from(JSON.stringify({ after: "'; drop table organizations; --" })).toString(
      "base64url",
    );
    for (const cursor of ["garbage!", "bm90LWpzb24", forged]) {
      const res = await t.request<ProblemBody>(
        "GET",
        `/v1/organizations?cursor=${encodeURIComponent(cursor)}`,
      );
      expectStatus(res, 400);
      expect(res.body.code, res.text).toBe("invalid_cursor");
    }
    const overlong = await t.request<ProblemBody>("GET", `/v1/organizations?cursor=${"a".repeat(300)}`);
    expectStatus(overlong, 400);
  });

  it("refuses a limit outside 1–100", async () => {
    for (const limit of ["0", "101", "-1", "abc", "1.5"]) {
      const res = await t.request<ProblemBody>("GET", `/v1/organizations?limit=${limit}`);
      expectStatus(res, 400);
      expect(res.body.code, res.text).toBe("validation_failed");
    }
  });

  it("filters by status and by slug", async () => {
    const active = await createOrg();
    const suspended = await createOrg();
    expectStatus(await t.request("POST", `/v1/organizations/${suspended.id}/suspend`), 200);

    const onlySuspended = await listAllIds("&status=suspended", 100);
    expect(onlySuspended.ids).toContain(suspended.id);
    expect(onlySuspended.ids).not.toContain(active.id);

    const onlyActive = await listAllIds("&status=active", 100);
    expect(onlyActive.ids).toContain(active.id);
    expect(onlyActive.ids).not.toContain(suspended.id);

    const bySlug = await t.request<ListBody<Org>>(
      "GET",
      `/v1/organizations?slug=${active.slug.toUpperCase()}`,
    );
    expectStatus(bySlug, 200);
    expect(bySlug.body.data.map((o) => o.id)).toEqual([active.id]);

    const bad = await t.request<ProblemBody>("GET", "/v1/organizations?status=archived");
    expectStatus(bad, 400);
  });

  it("is for the operator only", async () => {
    const { key } = await t.createOrgWithKey();
    const res = await t.request<ProblemBody>("GET", "/v1/organizations", { key });
    expectStatus(res, 403);
    expect(res.body.code, res.text).toBe("operator_only");
  });
});

describe("updating an organization", () => {
  it("changes only the fields the PATCH names", async () => {
    const org = await createOrg({ ...FULL_BODY });
    const updated = await patchOrg(org.id, { display_name: "Renamed", billing_email: "ap@acme.example" });
    const { updated_at: before, ...rest } = org;
    expect(updated).toEqual({
      ...rest,
      display_name: "Renamed",
      billing_email: "ap@acme.example",
      updated_at: updated.updated_at,
    });
    expect(updated.updated_at >= before).toBe(true);
    expect(await getOrg(org.id)).toEqual(updated);
  });

  it("clears a nullable field sent as null", async () => {
    const org = await createOrg({ ...FULL_BODY });
    const updated = await patchOrg(org.id, {
      display_name: null,
      logo_url: null,
      billing_email: null,
      billing_name: null,
      billing_address: null,
    });
    expect(updated).toMatchObject({
      display_name: null,
      logo_url: null,
      billing_email: null,
      billing_name: null,
      billing_address: null,
      name: org.name,
      currency: org.currency,
      metadata: org.metadata,
    });
  });

  it("refuses null for a field that cannot be empty", async () => {
    const org = await createOrg();
    for (const field of ["name", "slug", "currency", "metadata", "is_personal"]) {
      const res = await t.request<ProblemBody>("PATCH", `/v1/organizations/${org.id}`, {
        body: { [field]: null },
      });
      expectStatus(res, 400);
      expect(res.body.errors?.[0]?.path, res.text).toBe(field);
    }
    expect(await getOrg(org.id)).toEqual(org);
  });

  it("replaces metadata as a whole object", async () => {
    const org = await createOrg({ metadata: { a: 1, b: { c: 2 } } });
    const updated = await patchOrg(org.id, { metadata: { d: "x" } });
    expect(updated.metadata).toEqual({ d: "x" });
    const emptied = await patchOrg(org.id, { metadata: {} });
    expect(emptied.metadata).toEqual({});
  });

  it("merges external_ids key by key, a null removing a link", async () => {
    const org = await createOrg({
      external_ids: { stripe_customer_id: "cus_1", hubspot_company_id: "hs_1" },
    });
    const updated = await patchOrg(org.id, {
      external_ids: {
        hubspot_company_id: null,
        clerk_organization_id: "org_c1",
        stripe_customer_id: "cus_2",
      },
    });
    expect(updated.external_ids).toEqual({ stripe_customer_id: "cus_2", clerk_organization_id: "org_c1" });
    const untouched = await patchOrg(org.id, { name: "Still linked" });
    expect(untouched.external_ids).toEqual(updated.external_ids);
  });

  it("moves the slug, and refuses a slug another organization holds with 409 slug_taken", async () => {
    const org = await createOrg();
    const other = await createOrg();
    const moved = await patchOrg(org.id, { slug: uniqueName("moved") });
    expect(moved.slug).not.toBe(org.slug);

    const res = await t.request<ProblemBody>("PATCH", `/v1/organizations/${org.id}`, {
      body: { slug: other.slug, name: "Not applied either" },
    });
    expectStatus(res, 409);
    expect(res.body.code, res.text).toBe("slug_taken");
    expect(await getOrg(org.id)).toEqual(moved);
  });

  it("lets an org key read and update its own organization through /v1/organization", async () => {
    const { org, key } = await t.createOrgWithKey();
    const read = await t.request<Org>("GET", "/v1/organization", { key });
    expectStatus(read, 200);
    expect(read.body.id).toBe(org.id);

    const patched = await t.request<Org>("PATCH", "/v1/organization", {
      key,
      body: { billing_name: "Self Service Ltd", metadata: { via: "org key" } },
    });
    expectStatus(patched, 200);
    expect(patched.body).toMatchObject({
      id: org.id,
      billing_name: "Self Service Ltd",
      metadata: { via: "org key" },
    });
    expect(await getOrg(org.id)).toEqual(patched.body);
  });

  it("tells the operator that /v1/organization needs an org credential", async () => {
    const res = await t.request<ProblemBody>("GET", "/v1/organization");
    expectStatus(res, 403);
    expect(res.body.code, res.text).toBe("forbidden");
  });

  it("refuses an org key without orgs:write with 403 insufficient_scope", async () => {
    const org = await t.createOrg();
    const key = await t.createKey(org.id, ["orgs:read"]);
    for (const path of ["/v1/organization", `/v1/organizations/${org.id}`]) {
      const res = await t.request<ProblemBody>("PATCH", path, { key, body: { name: "nope" } });
      expectStatus(res, 403);
      expect(res.body.code, res.text).toBe("insufficient_scope");
    }
  });

  it("answers 404 to an org key patching another organization", async () => {
    const { key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    const res = await t.request<ProblemBody>("PATCH", `/v1/organizations/${other.id}`, {
      key,
      body: { name: "hijacked" },
    });
    expectStatus(res, 404);
    expect((await getOrg(other.id)).name).toBe(other.name);
  });
});

describe("suspending an organization", () => {
  it("refuses the suspended org's key everywhere but reading the organization itself", async () => {
    const { org, key } = await t.createOrgWithKey();
    const suspended = await t.request<Org>("POST", `/v1/organizations/${org.id}/suspend`, {
      body: { reason: "unpaid invoice" },
    });
    expectStatus(suspended, 200);
    expect(suspended.body).toMatchObject({ status: "suspended", suspended_reason: "unpaid invoice" });
    expect(suspended.body.suspended_at).not.toBeNull();

    for (const [method, path, body] of [
      ["PATCH", "/v1/organization", { name: "x" }],
      ["PATCH", `/v1/organizations/${org.id}`, { name: "x" }],
      ["GET", `/v1/organizations/${org.id}/api-keys`, undefined],
      ["POST", `/v1/organizations/${org.id}/api-keys`, { name: "k" }],
      ["GET", `/v1/organizations/${org.id}/audit-events`, undefined],
    ] as const) {
      const res = await t.request<ProblemBody>(method, path, { key, body });
      expectStatus(res, 403);
      expect(res.body.code, `${method} ${path}: ${res.text}`).toBe("organization_suspended");
    }

    for (const path of ["/v1/organization", `/v1/organizations/${org.id}`]) {
      const res = await t.request<Org>("GET", path, { key });
      expectStatus(res, 200);
      expect(res.body).toMatchObject({ id: org.id, status: "suspended" });
    }
  });

  it("restores the org key's access on unsuspend", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`), 200);
    expectStatus(await t.request("PATCH", "/v1/organization", { key, body: { name: "x" } }), 403);

    const res = await t.request<Org>("POST", `/v1/organizations/${org.id}/unsuspend`);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ status: "active", suspended_at: null, suspended_reason: null });

    const patched = await t.request<Org>("PATCH", "/v1/organization", { key, body: { name: "Back" } });
    expectStatus(patched, 200);
    expect(patched.body.name).toBe("Back");
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}/api-keys`, { key }), 200);
  });

  it("refuses to suspend twice or to unsuspend an active organization with 409", async () => {
    const org = await t.createOrg();
    const unsuspend = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/unsuspend`);
    expectStatus(unsuspend, 409);
    expect(unsuspend.body.code, unsuspend.text).toBe("invalid_state_transition");

    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`), 200);
    const again = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/suspend`);
    expectStatus(again, 409);
    expect(again.body.code, again.text).toBe("invalid_state_transition");
  });

  it("is for the operator only, and another org's suspension is a 404 to an org key", async () => {
    const { org, key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    for (const action of ["suspend", "unsuspend"]) {
      const own = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/${action}`, { key });
      expectStatus(own, 403);
      expect(own.body.code, own.text).toBe("operator_only");
      const foreign = await t.request<ProblemBody>("POST", `/v1/organizations/${other.id}/${action}`, {
        key,
      });
      expectStatus(foreign, 404);
    }
    expect((await getOrg(org.id)).status).toBe("active");
  });

  it("answers 404 for an unknown organization", async () => {
    const res = await t.request<ProblemBody>(
      "POST",
      "/v1/organizations/org_01jd0v4n6qf9yb5c8h2m3k7x1z/suspend",
    );
    expectStatus(res, 404);
  });
});

describe("deleting an organization", () => {
  it("soft-deletes: its keys stop at once, the operator still reads it", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await t.request<Org>("DELETE", `/v1/organizations/${org.id}`);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ id: org.id, status: "deleted" });
    expect(res.body.deleted_at).not.toBeNull();

    const refused = await t.request<ProblemBody>("GET", "/v1/organization", { key });
    expectStatus(refused, 401);
    expect(refused.body.code, refused.text).toBe("invalid_credential");

    const read = await getOrg(org.id);
    expect(read).toMatchObject({ id: org.id, status: "deleted", name: org.name, slug: org.slug });
    const keys = await t.request<ListBody<unknown>>("GET", `/v1/organizations/${org.id}/api-keys`);
    expectStatus(keys, 200);
    expect(keys.body.data).toHaveLength(1);
  });

  it("leaves the default listing and appears under ?status=deleted", async () => {
    const org = await t.createOrg();
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}`), 200);
    expect((await listAllIds("", 100)).ids).not.toContain(org.id);
    expect((await listAllIds("&status=active", 100)).ids).not.toContain(org.id);
    expect((await listAllIds("&status=deleted", 100)).ids).toContain(org.id);
  });

  it("gives the slug back for a new organization to take", async () => {
    const slug = uniqueName("reused");
    const first = await createOrg({ slug });
    expectStatus(await t.request("DELETE", `/v1/organizations/${first.id}`), 200);
    const second = await createOrg({ slug });
    expect(second.slug).toBe(slug);
    expect(second.id).not.toBe(first.id);

    const live = await t.request<ListBody<Org>>("GET", `/v1/organizations?slug=${slug}`);
    expect(live.body.data.map((o) => o.id)).toEqual([second.id]);
    const gone = await t.request<ListBody<Org>>("GET", `/v1/organizations?slug=${slug}&status=deleted`);
    expect(gone.body.data.map((o) => o.id)).toEqual([first.id]);
  });

  it("refuses to change a deleted organization with 409, and deleting again changes nothing", async () => {
    const org = await t.createOrg();
    const deleted = await t.request<Org>("DELETE", `/v1/organizations/${org.id}`);
    expectStatus(deleted, 200);
    for (const [method, path, body] of [
      ["PATCH", `/v1/organizations/${org.id}`, { name: "zombie" }],
      ["POST", `/v1/organizations/${org.id}/suspend`, undefined],
      ["POST", `/v1/organizations/${org.id}/unsuspend`, undefined],
      ["POST", `/v1/organizations/${org.id}/api-keys`, { name: "k" }],
    ] as const) {
      const res = await t.request<ProblemBody>(method, path, { body });
      expectStatus(res, 409);
      expect(res.body.code, `${method} ${path}: ${res.text}`).toBe("invalid_state_transition");
    }
    const again = await t.request<Org>("DELETE", `/v1/organizations/${org.id}`);
    expectStatus(again, 200);
    expect(again.body).toEqual(deleted.body);
  });

  it("lets an org key holding orgs:delete delete its own organization, and not another", async () => {
    const { org, key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    expectStatus(await t.request("DELETE", `/v1/organizations/${other.id}`, { key }), 404);
    const limited = await t.createKey(org.id, ["orgs:read", "orgs:write"]);
    const refused = await t.request<ProblemBody>("DELETE", `/v1/organizations/${org.id}`, { key: limited });
    expectStatus(refused, 403);
    expect(refused.body.code, refused.text).toBe("insufficient_scope");

    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}`, { key }), 200);
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}`, { key }), 401);
    expect((await getOrg(other.id)).status).toBe("active");
  });
});

describe("acceptance", () => {
  it("walks the operator's path: create, patch, read through an org key, suspend, refused", async () => {
    const created = await t.request<Org>("POST", "/v1/organizations", {
      body: { name: "Walkthrough Inc", slug: uniqueName("walkthrough") },
    });
    expectStatus(created, 201);
    const orgId = created.body.id;

    const patched = await t.request<Org>("PATCH", `/v1/organizations/${orgId}`, {
      body: { metadata: { tier: "gold", region: "eu" }, billing_email: "finance@walkthrough.example" },
    });
    expectStatus(patched, 200);

    const keyRes = await t.request<{ key: string }>("POST", `/v1/organizations/${orgId}/api-keys`, {
      body: { name: "walkthrough backend" },
    });
    expectStatus(keyRes, 201);
    const orgKey = keyRes.body.key;

    const read = await t.request<Org>("GET", "/v1/organization", { key: orgKey });
    expectStatus(read, 200);
    expect(read.body).toMatchObject({
      id: orgId,
      name: "Walkthrough Inc",
      metadata: { tier: "gold", region: "eu" },
      billing_email: "finance@walkthrough.example",
      status: "active",
    });

    expectStatus(await t.request("POST", `/v1/organizations/${orgId}/suspend`), 200);
    const refused = await t.request<ProblemBody>("PATCH", "/v1/organization", {
      key: orgKey,
      body: { billing_email: "someone@else.example" },
    });
    expectStatus(refused, 403);
    expect(refused.body.code, refused.text).toBe("organization_suspended");
    expect(refused.headers.get("Content-Type")).toBe("application/problem+json");
    expect(refused.body.request_id).toBe(refused.headers.get("X-Request-Id"));
  });
});
