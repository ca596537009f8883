import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Catalog, PlanDefinition } from "../../src/domain/catalog/catalog.types.ts";
import { createMemoryRateLimiter } from "../../src/infra/rate-limiter.memory.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ManualClock,
  type TestContext,
  uniqueName,
} from "../harness.ts";
import { testCatalog, testPlan } from "../plans.ts";

type Limit = { category: string; requests_per_minute: number; window_seconds: number; source: string };
type LimitList = { data: Limit[]; has_more: boolean };
type Problem = {
  code: string;
  status: number;
  category?: string;
  limit?: number;
  window_seconds?: number;
  retry_after?: number;
  errors?: { path: string; message: string }[];
};

function plan(key: string, rateLimits: Record<string, number>): PlanDefinition {
  return testPlan(key, { rateLimits });
}

const catalog: Catalog = testCatalog(
  [
    plan("small", { metadata: 5, search: 3 }),
    plan("large", { metadata: 50, search: 30 }),
    // Names no metadata limit: CRUD is then not limited at all.
    plan("open", { search: 3 }),
  ],
  {
    categories: [
      { key: "metadata", description: "CRUD" },
      { key: "search", description: "Queries" },
      { key: "upload", description: "Uploads" },
    ],
  },
);

let t: TestContext;
let clock: ManualClock;
beforeAll(async () => {
  clock = createManualClock(new Date("2031-05-01T12:00:00.000Z"));
  t = await createTestContext({ catalog, clock, rateLimiter: createMemoryRateLimiter({ clock }) });
});
afterAll(() => t.close());

const limitsPath = (orgId: string, projectId?: string) =>
  `/v1/organizations/${orgId}/rate-limits${projectId === undefined ? "" : `?project_id=${projectId}`}`;

/** Effective limits by category, as the operator (never limited) sees them. */
async function limits(orgId: string, projectId?: string): Promise<Record<string, Limit>> {
  const res = await t.request<LimitList>("GET", limitsPath(orgId, projectId));
  expectStatus(res, 200);
  return Object.fromEntries(res.body.data.map((l) => [l.category, l]));
}

async function createProject(orgId: string): Promise<string> {
  const res = await t.request<{ id: string }>("POST", `/v1/organizations/${orgId}/projects`, {
    body: { name: uniqueName("prj") },
  });
  expectStatus(res, 201);
  return res.body.id;
}

async function createKey(orgId: string, body: Record<string, unknown>): Promise<string> {
  const res = await t.request<{ key: string }>("POST", `/v1/organizations/${orgId}/api-keys`, {
    body: { name: uniqueName("key"), ...body },
  });
  expectStatus(res, 201);
  return res.body.key;
}

describe("effective limits", () => {
  it("shows each category's plan limit with its source; categories the plan lacks are not listed", async () => {
    const org = await t.createOrg();
    const res = await t.request<LimitList>("GET", limitsPath(org.id));
    expectStatus(res, 200);
    expect(res.body).toEqual({
      data: [
        { category: "metadata", requests_per_minute: 5, window_seconds: 60, source: "plan" },
        { category: "search", requests_per_minute: 3, window_seconds: 60, source: "plan" },
      ],
      has_more: false,
      next_cursor: null,
    });
  });

  it("applies org and project overrides over the plan, removes them with null, and audits each change", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    let res = await t.request<LimitList>("PATCH", limitsPath(org.id), {
      body: { rate_limits: { search: 2, upload: 7 } },
    });
    expectStatus(res, 200);
    expect(await limits(org.id)).toMatchObject({
      metadata: { requests_per_minute: 5, source: "plan" },
      search: { requests_per_minute: 2, source: "org" },
      upload: { requests_per_minute: 7, source: "org" },
    });
    res = await t.request<LimitList>("PATCH", limitsPath(org.id, projectId), {
      body: { rate_limits: { search: 1 } },
    });
    expectStatus(res, 200);
    expect(await limits(org.id, projectId)).toMatchObject({
      metadata: { source: "plan" },
      search: { requests_per_minute: 1, source: "project" },
      upload: { requests_per_minute: 7, source: "org" },
    });
    // The organization's own view is unchanged by a project's override.
    expect((await limits(org.id)).search).toMatchObject({ requests_per_minute: 2, source: "org" });

    res = await t.request<LimitList>("PATCH", limitsPath(org.id), {
      body: { rate_limits: { search: null, upload: null } },
    });
    expectStatus(res, 200);
    const after = await limits(org.id);
    expect(after.search).toMatchObject({ requests_per_minute: 3, source: "plan" });
    expect(after.upload).toBeUndefined();

    const audit = await t.request<{ data: { action: string; target_id: string; changes: unknown }[] }>(
      "GET",
      `/v1/organizations/${org.id}/audit-events?limit=100`,
    );
    expectStatus(audit, 200);
    const actions = audit.body.data.map((e) => e.action);
    expect(actions.filter((a) => a === "organization.rate_limits_updated")).toHaveLength(2);
    expect(actions).toContain("project.rate_limits_updated");
    const removal = audit.body.data.find((e) => e.action === "organization.rate_limits_updated");
    expect(removal?.changes).toEqual({ search: { from: 2, to: null }, upload: { from: 7, to: null } });
  });

  it("answers 404 for another organization's or an unknown project", async () => {
    const org = await t.createOrg();
    const other = await t.createOrg();
    const foreign = await createProject(other.id);
    const res = await t.request<Problem>("GET", limitsPath(org.id, foreign));
    expectStatus(res, 404);
    expectStatus(
      await t.request("PATCH", limitsPath(org.id, "prj_nope"), { body: { rate_limits: { search: 1 } } }),
      404,
    );
  });

  it("moves limits with a plan change at once", async () => {
    const org = await t.createOrg();
    expect((await limits(org.id)).metadata?.requests_per_minute).toBe(5);
    await t.setPlan(org.id, "large");
    expect(await limits(org.id)).toMatchObject({
      metadata: { requests_per_minute: 50, source: "plan" },
      search: { requests_per_minute: 30, source: "plan" },
    });
  });
});

describe("changing limits", () => {
  it("refuses an unknown category with a 400 naming it, and changes nothing", async () => {
    const org = await t.createOrg();
    const res = await t.request<Problem>("PATCH", limitsPath(org.id), {
      body: { rate_limits: { search: 2, compute: 5 } },
    });
    expectStatus(res, 400);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.errors?.[0]?.path).toBe("rate_limits.compute");
    expect((await limits(org.id)).search?.source).toBe("plan");
  });

  it.each([
    [{ search: 0 }],
    [{ search: -1 }],
    [{ search: 1.5 }],
    [{ search: "10" }],
    [{ search: 10_000_001 }],
    [{ "Not A Category": 1 }],
    [Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`c${i}`, 1]))],
    [["search", 1]],
  ])("refuses the malformed body %j with a 400", async (body) => {
    const org = await t.createOrg();
    const res = await t.request<Problem>("PATCH", limitsPath(org.id), { body: { rate_limits: body } });
    expectStatus(res, 400);
    expect(res.body.code).toBe("validation_failed");
  });

  it("refuses a body without rate_limits or with other fields", async () => {
    const org = await t.createOrg();
    for (const body of [{}, { search: 1 }, { rate_limits: { search: 1 }, extra: true }]) {
      expectStatus(await t.request("PATCH", limitsPath(org.id), { body }), 400);
    }
    expectStatus(await t.request("GET", `${limitsPath(org.id)}?unknown=1`), 400);
  });

  it("lets the organization lower its limits but only the operator raise them above the plan", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(
      await t.request("PATCH", limitsPath(org.id), { key, body: { rate_limits: { search: 2 } } }),
      200,
    );
    const refused = await t.request<Problem>("PATCH", limitsPath(org.id), {
      key,
      body: { rate_limits: { search: 4 } },
    });
    expectStatus(refused, 403);
    expect(refused.body.code).toBe("forbidden");
    expectStatus(
      await t.request("PATCH", limitsPath(org.id), { body: { rate_limits: { search: 400 } } }),
      200,
    );
    expect((await limits(org.id)).search).toMatchObject({ requests_per_minute: 400, source: "org" });
  });

  it("needs orgs:write to change and orgs:read to look", async () => {
    const org = await t.createOrg();
    const reader = await t.createKey(org.id, ["orgs:read"]);
    expectStatus(await t.request("GET", limitsPath(org.id), { key: reader }), 200);
    const res = await t.request<Problem>("PATCH", limitsPath(org.id), {
      key: reader,
      body: { rate_limits: { search: 1 } },
    });
    expectStatus(res, 403);
    expect(res.body.code).toBe("insufficient_scope");
    const stranger = await t.createKey((await t.createOrg()).id);
    expectStatus(await t.request("GET", limitsPath(org.id), { key: stranger }), 404);
  });

  it("takes rate_limits in PATCH /v1/organization and PATCH /v1/organizations/{org_id}", async () => {
    const { org, key } = await t.createOrgWithKey();
    let res = await t.request("PATCH", "/v1/organization", {
      key,
      body: { display_name: "Lowered", rate_limits: { search: 1 } },
    });
    expectStatus(res, 200);
    expect((await limits(org.id)).search).toMatchObject({ requests_per_minute: 1, source: "org" });
    res = await t.request("PATCH", `/v1/organizations/${org.id}`, {
      body: { rate_limits: { search: null, metadata: 500 } },
    });
    expectStatus(res, 200);
    expect(await limits(org.id)).toMatchObject({
      search: { requests_per_minute: 3, source: "plan" },
      metadata: { requests_per_minute: 500, source: "org" },
    });
    const refused = await t.request<Problem>("PATCH", "/v1/organization", {
      key,
      body: { display_name: "Never", rate_limits: { compute: 1 } },
    });
    expectStatus(refused, 400);
    const view = await t.request<{ display_name: string }>("GET", `/v1/organizations/${org.id}`);
    expect(view.body.display_name).toBe("Lowered");

    // One transaction: a taken slug leaves the rate limits as they were.
    const other = await t.createOrg();
    const conflict = await t.request<Problem>("PATCH", `/v1/organizations/${org.id}`, {
      body: { slug: other.slug, rate_limits: { search: 2 } },
    });
    expectStatus(conflict, 409);
    expect((await limits(org.id)).search?.source).toBe("plan");
  });
});

describe("Orgplane's own API is limited per org and category", () => {
  it("carries the draft and X- headers on allowed responses, then 429s with Retry-After and a problem", async () => {
    const { org, key } = await t.createOrgWithKey();
    const path = `/v1/organizations/${org.id}`;
    for (let i = 0; i < 5; i++) {
      const res = await t.request("GET", path, { key });
      expectStatus(res, 200);
      expect(res.headers.get("RateLimit-Policy")).toBe('"metadata";q=5;w=60');
      expect(res.headers.get("RateLimit")).toMatch(new RegExp(`^"metadata";r=${4 - i};t=\\d+$`));
      expect(res.headers.get("X-RateLimit-Limit")).toBe("5");
      expect(res.headers.get("X-RateLimit-Remaining")).toBe(String(4 - i));
      expect(Number(res.headers.get("X-RateLimit-Reset"))).toBeGreaterThan(clock.now().getTime() / 1000);
    }
    const limited = await t.request<Problem>("GET", path, { key });
    expectStatus(limited, 429);
    expect(limited.headers.get("Content-Type")).toBe("application/problem+json");
    const retryAfter = Number(limited.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers.get("RateLimit-Policy")).toBe('"metadata";q=5;w=60');
    expect(limited.headers.get("X-RateLimit-Remaining")).toBe("0");
    expect(limited.body).toMatchObject({
      code: "rate_limited",
      status: 429,
      category: "metadata",
      limit: 5,
      window_seconds: 60,
      retry_after: retryAfter,
    });
    // Every route of the category shares the org's bucket.
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}/projects`, { key }), 429);
    // Another organization has its own bucket.
    const other = await t.createOrgWithKey();
    expectStatus(await t.request("GET", `/v1/organizations/${other.org.id}`, { key: other.key }), 200);

    clock.advance(retryAfter * 1000);
    const again = await t.request("GET", path, { key });
    expectStatus(again, 200);
    clock.advance(60_000);
    const refilled = await t.request("GET", path, { key });
    expect(refilled.headers.get("X-RateLimit-Remaining")).toBe("4");
  });

  it("never limits the operator, and sends it no rate-limit headers", async () => {
    const org = await t.createOrg();
    for (let i = 0; i < 12; i++) {
      const res = await t.request("GET", `/v1/organizations/${org.id}`);
      expectStatus(res, 200);
      expect(res.headers.get("RateLimit")).toBeNull();
    }
  });

  it("limits members signed in with a token like keys", async () => {
    const org = await t.createOrg();
    const { token } = await t.createMember(org.id, "admin");
    const res = await t.request("GET", `/v1/organizations/${org.id}`, { key: token });
    expectStatus(res, 200);
    expect(res.headers.get("X-RateLimit-Limit")).toBe("5");
  });

  it("applies key > project > org > plan to the requests of each key", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const orgKey = await createKey(org.id, {});
    const projectKey = await createKey(org.id, { project_id: projectId });
    const ownLimitKey = await createKey(org.id, {
      project_id: projectId,
      rate_limit_overrides: { metadata: 40 },
    });
    const projectPath = `/v1/organizations/${org.id}/projects/${projectId}`;
    const limitOf = async (key: string) => {
      const res = await t.request("GET", projectPath, { key });
      expectStatus(res, 200);
      return res.headers.get("X-RateLimit-Limit");
    };
    expect(await limitOf(orgKey)).toBe("5");
    expect(await limitOf(projectKey)).toBe("5");
    expectStatus(
      await t.request("PATCH", limitsPath(org.id), { body: { rate_limits: { metadata: 20 } } }),
      200,
    );
    expectStatus(
      await t.request("PATCH", limitsPath(org.id, projectId), { body: { rate_limits: { metadata: 30 } } }),
      200,
    );
    expect(await limitOf(orgKey)).toBe("20");
    expect(await limitOf(projectKey)).toBe("30");
    expect(await limitOf(ownLimitKey)).toBe("40");
  });

  it("sees a plan change within the one-second cache, and does not limit a category the plan lacks", async () => {
    const { org, key } = await t.createOrgWithKey();
    const path = `/v1/organizations/${org.id}`;
    expect((await t.request("GET", path, { key })).headers.get("X-RateLimit-Limit")).toBe("5");
    await t.setPlan(org.id, "large");
    clock.advance(1000);
    expect((await t.request("GET", path, { key })).headers.get("X-RateLimit-Limit")).toBe("50");
    await t.setPlan(org.id, "open");
    clock.advance(1000);
    for (let i = 0; i < 8; i++) {
      const res = await t.request("GET", path, { key });
      expectStatus(res, 200);
      expect(res.headers.get("RateLimit-Policy")).toBeNull();
    }
  });
});
