import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog, PlanDefinition } from "../../src/domain/catalog/catalog.types.ts";
import { createTestContext, expectStatus, type TestContext, uniqueName } from "../harness.ts";
import { testCatalog, testPlan } from "../plans.ts";

type QuotaBody = { quota: string; limit: number | null; current: number; source: string };
type QuotaProblem = { code: string; status: number; quota: string; limit: number; current: number };

function plan(key: string, quotas: Record<string, number | null>): PlanDefinition {
  return testPlan(key, { quotas });
}

const catalog: Catalog = testCatalog([
  plan("small", {
    members: 2,
    projects: 5,
    api_keys: 3,
    invitations: 2,
    datasets: 10,
    storage_bytes: null,
  }),
  plan("large", { members: null, projects: null, api_keys: null, invitations: null }),
]);

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext({ catalog });
});
afterAll(() => t.close());

function createProject(orgId: string) {
  return t.request<QuotaProblem>("POST", `/v1/organizations/${orgId}/projects`, {
    body: { name: uniqueName("prj") },
  });
}

async function quotas(orgId: string): Promise<Record<string, QuotaBody>> {
  const res = await t.request<{ data: QuotaBody[]; has_more: boolean }>(
    "GET",
    `/v1/organizations/${orgId}/quotas`,
  );
  expectStatus(res, 200);
  expect(res.body.has_more).toBe(false);
  return Object.fromEntries(res.body.data.map((q) => [q.quota, q]));
}

describe("quotas", () => {
  it("lists every quota of the plan with its limit, current use and source", async () => {
    const org = await t.createOrg();
    await t.createKey(org.id);
    expectStatus(await createProject(org.id), 201);
    expect(await quotas(org.id)).toEqual({
      members: { quota: "members", limit: 2, current: 0, source: "plan" },
      projects: { quota: "projects", limit: 5, current: 1, source: "plan" },
      api_keys: { quota: "api_keys", limit: 3, current: 1, source: "plan" },
      invitations: { quota: "invitations", limit: 2, current: 0, source: "plan" },
      // The product's own quotas: reported, use fed later by the usage API.
      datasets: { quota: "datasets", limit: 10, current: 0, source: "plan" },
      storage_bytes: { quota: "storage_bytes", limit: null, current: 0, source: "plan" },
    });
  });

  it("lets exactly 3 of 20 parallel project creates through when 3 are left", async () => {
    const org = await t.createOrg();
    expectStatus(await createProject(org.id), 201);
    expectStatus(await createProject(org.id), 201);
    const results = await Promise.all(Array.from({ length: 20 }, () => createProject(org.id)));
    const created = results.filter((r) => r.status === 201);
    const refused = results.filter((r) => r.status === 403);
    expect(created, results.map((r) => r.text).join("\n")).toHaveLength(3);
    expect(
      refused,
      results
        .filter((r) => r.status !== 403)
        .map((r) => r.text)
        .join("\n"),
    ).toHaveLength(17);
    for (const r of refused) {
      expect(r.body, r.text).toMatchObject({
        code: "quota_exceeded",
        status: 403,
        quota: "projects",
        limit: 5,
        current: 5,
      });
    }
    expect((await quotas(org.id)).projects?.current).toBe(5);
  });

  it("frees room when a project is deleted, and lifts the limit on a larger plan", async () => {
    const org = await t.createOrg();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await t.request<{ id: string }>("POST", `/v1/organizations/${org.id}/projects`, {
        body: { name: uniqueName("prj") },
      });
      expectStatus(res, 201);
      ids.push(res.body.id);
    }
    expectStatus(await createProject(org.id), 403);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/projects/${ids[0]}`), 200);
    expectStatus(await createProject(org.id), 201);
    await t.setPlan(org.id, "large");
    expectStatus(await createProject(org.id), 201);
  });

  it("counts active API keys only", async () => {
    const org = await t.createOrg();
    const created: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await t.request<{ id: string }>("POST", `/v1/organizations/${org.id}/api-keys`, {
        body: { name: uniqueName("key"), scopes: ["orgs:read"] },
      });
      expectStatus(res, 201);
      created.push(res.body.id);
    }
    const over = await t.request<QuotaProblem>("POST", `/v1/organizations/${org.id}/api-keys`, {
      body: { name: "one too many", scopes: ["orgs:read"] },
    });
    expectStatus(over, 403);
    expect(over.body).toMatchObject({ code: "quota_exceeded", quota: "api_keys", limit: 3, current: 3 });
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${created[0]}`), 200);
    expectStatus(
      await t.request("POST", `/v1/organizations/${org.id}/api-keys`, {
        body: { name: "replacement", scopes: ["orgs:read"] },
      }),
      201,
    );
  });

  it("limits pending invitations at invite time and members at accept time", async () => {
    const org = await t.createOrg();
    await t.createMember(org.id, "owner");
    const [emailA, emailB] = [`${uniqueName("a")}@example.test`, `${uniqueName("b")}@example.test`];
    const emails = [emailA, emailB];
    for (const email of emails) {
      expectStatus(
        await t.request("POST", `/v1/organizations/${org.id}/invitations`, {
          body: { email, role: "member" },
        }),
        201,
      );
    }
    const third = await t.request<QuotaProblem>("POST", `/v1/organizations/${org.id}/invitations`, {
      body: { email: `${uniqueName("c")}@example.test`, role: "member" },
    });
    expectStatus(third, 403);
    expect(third.body).toMatchObject({ quota: "invitations", limit: 2, current: 2 });

    const tokens = await Promise.all(
      emails.map(async (email) => {
        const { rows } = await t.database.pool.query<{ text_body: string }>(
          "select text_body from mail_outbox where org_id = $1 and to_address = $2",
          [org.id, email],
        );
        const token = /#token=([A-Za-z0-9_-]+)/.exec(rows[0]?.text_body ?? "")?.[1];
        if (token === undefined) {
          throw new Error(`no invitation token for ${email}`);
        }
        return token;
      }),
    );
    // The owner is one member of two: the first acceptance fills the organization.
    const first = await t.signIn({ email: emailA });
    expectStatus(
      await t.request("POST", "/v1/invitations/accept", { key: first.token, body: { token: tokens[0] } }),
      200,
    );
    const second = await t.signIn({ email: emailB });
    const refused = await t.request<QuotaProblem>("POST", "/v1/invitations/accept", {
      key: second.token,
      body: { token: tokens[1] },
    });
    expectStatus(refused, 403);
    expect(refused.body).toMatchObject({ code: "quota_exceeded", quota: "members", limit: 2, current: 2 });
  });

  it("answers the product's check as data: allowed within the limit, refused beyond it", async () => {
    const org = await t.createOrg();
    expect(await t.services.quotas.check(org.id, "datasets", 10)).toEqual({
      allowed: true,
      quota: "datasets",
      limit: 10,
      current: 0,
    });
    expect(await t.services.quotas.check(org.id, "datasets", 11)).toEqual({
      allowed: false,
      quota: "datasets",
      limit: 10,
      current: 0,
    });
    // A quota no plan names and no meter counts is unknown (a typo), not unlimited.
    await expect(t.services.quotas.check(org.id, "chunks", 1_000_000)).rejects.toMatchObject({
      code: "not_found",
    });
  });
});
