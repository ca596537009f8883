import type { z } from "@hono/zod-openapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syncCatalog } from "../../src/domain/catalog/catalog.service.ts";
import type { Catalog, PlanDefinition } from "../../src/domain/catalog/catalog.types.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import type { PlanSchema } from "../../src/http/schemas/plan.ts";
import { parseCatalog } from "../../src/infra/catalog-file.ts";
import { createTestContext, expectStatus, type TestContext } from "../harness.ts";

type Plan = z.infer<typeof PlanSchema>;

const CATALOG = parseCatalog(
  `rate_limit_categories:
  - key: api
plans:
  - key: starter
    name: Starter
    tier: starter
    price: null
    monthly_credits: "1000"
    rate_limits: { api: 60 }
    quotas: { projects: 3, members: 5 }
  - key: growth
    name: Growth
    tier: GROWTH
    price: { amount_minor: 4900, currency: usd, interval: month }
    trial_days: 14
    monthly_credits: "100000"
    rate_limits: { api: 600 }
    quotas: { projects: 50, members: null }
    features: { sso: true }
    stripe_price_id: price_growth
  - key: partner
    name: Partner
    tier: partner
    price: null
    monthly_credits: null
    rate_limits: { api: 6000 }
    visibility: private
default_plan: starter
fallback_plan: starter
`,
  "plans.test.yaml",
);

let t: TestContext;
let orgKey: string;
beforeAll(async () => {
  t = await createTestContext({ catalog: CATALOG });
  ({ key: orgKey } = await t.createOrgWithKey());
});
afterAll(() => t.close());

/** Sync an edited catalog into the file's database, as a restart with the edited orgplane.yaml does. */
async function restartWith(plans: PlanDefinition[]): Promise<void> {
  const catalog: Catalog = { ...CATALOG, plans };
  await t.database.transactor.transaction((stores) => syncCatalog(stores.planVersions, catalog, new Date()));
}

function plan(key: string): PlanDefinition {
  const found = CATALOG.plans.find((p) => p.key === key);
  if (found === undefined) {
    throw new Error(`no plan ${key}`);
  }
  return found;
}

async function listPlans(key: string, query = ""): Promise<Plan[]> {
  const res = await t.request<{ data: Plan[] }>("GET", `/v1/plans${query}`, { key });
  expectStatus(res, 200);
  return res.body.data;
}

describe("GET /v1/plans", () => {
  it("shows an organization the current public plans in catalog order, in snake_case", async () => {
    const plans = await listPlans(orgKey);
    expect(plans.map((p) => p.key)).toEqual(["starter", "growth"]);
    const growth = plans[1];
    expect(growth).toEqual({
      object: "plan",
      id: expect.stringMatching(/^pln_[0-9a-z]{26}$/),
      key: "growth",
      version: 1,
      name: "Growth",
      tier: "GROWTH",
      price: { amount_minor: 4900, currency: "usd", interval: "month" },
      trial_days: 14,
      monthly_credits: "100000",
      rate_limits: { api: 600 },
      quotas: { projects: 50, members: null },
      features: { sso: true },
      visibility: "public",
      stripe_price_id: "price_growth",
      is_current: true,
      created_at: expect.any(String),
    });
  });

  it("shows the operator private plans too", async () => {
    expect((await listPlans(t.operatorKey)).map((p) => p.key)).toEqual(["starter", "growth", "partner"]);
  });

  it("lets a signed-in member and a suspended organization read plans", async () => {
    const { org, key } = await t.createOrgWithKey();
    const member = await t.createMember(org.id, "viewer");
    expect((await listPlans(member.token)).map((p) => p.key)).toEqual(["starter", "growth"]);
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`, { body: {} }), 200);
    expect((await listPlans(key)).map((p) => p.key)).toEqual(["starter", "growth"]);
  });

  it("refuses every version to an organization's credential", async () => {
    const res = await t.request<ProblemBody>("GET", "/v1/plans?all_versions=true", { key: orgKey });
    expectStatus(res, 403);
    expect(res.body.code).toBe("operator_only");
  });

  it("refuses an anonymous caller", async () => {
    expectStatus(await t.request("GET", "/v1/plans", { key: undefined }), 401);
  });
});

describe("GET /v1/plans/{plan_id}", () => {
  it("returns a plan by key", async () => {
    const res = await t.request<Plan>("GET", "/v1/plans/starter", { key: orgKey });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ key: "starter", version: 1, quotas: { projects: 3, members: 5 } });
  });

  it("does not show an organization a private plan, nor an unknown one", async () => {
    const res = await t.request<ProblemBody>("GET", "/v1/plans/partner", { key: orgKey });
    expectStatus(res, 404);
    expect(res.body.detail).toBe("Plan 'partner' not found");
    expectStatus(await t.request("GET", "/v1/plans/platinum", { key: orgKey }), 404);
    expectStatus(await t.request("GET", "/v1/plans/pln_01jd0v4n6qf9yb5c8h2m3k7x1z"), 404);
    const partner = await t.services.catalog.currentPlan("partner");
    expectStatus(await t.request("GET", `/v1/plans/${partner.id}`, { key: orgKey }), 404);
    expectStatus(await t.request("GET", "/v1/plans/partner"), 200);
  });
});

describe("plan versions", () => {
  it("keeps an unchanged plan's version across restarts", async () => {
    const before = await listPlans(t.operatorKey);
    await restartWith(CATALOG.plans);
    expect(await listPlans(t.operatorKey)).toEqual(before);
  });

  it("makes an edited plan a new current version and keeps the old one readable by the operator", async () => {
    const [v1] = (await listPlans(orgKey)).filter((p) => p.key === "starter");
    const edited = { ...plan("starter"), quotas: { projects: 5, members: 5 } };
    await restartWith([edited, plan("growth"), plan("partner")]);

    const current = await t.request<Plan>("GET", "/v1/plans/starter", { key: orgKey });
    expectStatus(current, 200);
    expect(current.body).toMatchObject({ version: 2, is_current: true, quotas: { projects: 5, members: 5 } });
    expect(current.body.id).not.toBe(v1?.id);

    const old = await t.request<Plan>("GET", "/v1/plans/starter?version=1");
    expectStatus(old, 200);
    expect(old.body).toMatchObject({ id: v1?.id, version: 1, is_current: false, quotas: { projects: 3 } });
    const refused = await t.request<ProblemBody>("GET", "/v1/plans/starter?version=1", { key: orgKey });
    expectStatus(refused, 403);
    expect(refused.body.code).toBe("operator_only");
    expectStatus(await t.request("GET", "/v1/plans/starter?version=9"), 404);

    // By version id: the operator reads any version; an organization only the current one.
    const byId = await t.request<Plan>("GET", `/v1/plans/${v1?.id}`);
    expectStatus(byId, 200);
    expect(byId.body).toMatchObject({ key: "starter", version: 1 });
    expectStatus(await t.request("GET", `/v1/plans/${v1?.id}`, { key: orgKey }), 403);
    expectStatus(await t.request("GET", `/v1/plans/${current.body.id}`, { key: orgKey }), 200);

    // What a subscription on version 1 reads: its version, unchanged.
    const kept = await t.services.catalog.planVersion(v1?.id ?? "");
    expect(kept.definition.quotas).toEqual({ projects: 3, members: 5 });

    const all = await listPlans(t.operatorKey, "?all_versions=true");
    expect(all.filter((p) => p.key === "starter").map((p) => [p.version, p.is_current])).toEqual([
      [2, true],
      [1, false],
    ]);
  });

  it("stops listing a plan removed from the file, and lists it again unchanged when it returns", async () => {
    const growth = await t.services.catalog.currentPlan("growth");
    const starter = await t.services.catalog.currentPlan("starter");
    await restartWith([starter.definition, plan("partner")]);
    expect((await listPlans(orgKey)).map((p) => p.key)).toEqual(["starter"]);
    expectStatus(await t.request("GET", "/v1/plans/growth", { key: orgKey }), 404);
    const removed = await t.services.catalog.planVersion(growth.id);
    expect(removed.isCurrent).toBe(false);

    await restartWith([starter.definition, plan("growth"), plan("partner")]);
    const back = await t.services.catalog.currentPlan("growth");
    expect(back).toMatchObject({ id: growth.id, version: 1, isCurrent: true });
  });
});

describe("the catalog service", () => {
  it("names the default and fallback plans and refuses unknown keys", async () => {
    expect((await t.services.catalog.defaultPlan()).key).toBe("starter");
    expect((await t.services.catalog.fallbackPlan()).key).toBe("starter");
    expect(t.services.catalog.catalog().plans.map((p) => p.key)).toEqual(["starter", "growth", "partner"]);
    await expect(t.services.catalog.currentPlan("platinum")).rejects.toMatchObject({ code: "not_found" });
    await expect(t.services.catalog.planVersion("pln_nope")).rejects.toMatchObject({ code: "not_found" });
  });
});
