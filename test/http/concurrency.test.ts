import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import {
  createSecondApp,
  createTestContext,
  expectStatus,
  type ListBody,
  type SecondApp,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";

type Org = { id: string; slug: string };

let t: TestContext;
let second: SecondApp;
beforeAll(async () => {
  t = await createTestContext();
  // A second app with its own pool on the same database: two processes racing for one slug.
  second = createSecondApp(t);
});
afterAll(async () => {
  await second.close();
  await t.close();
});

/** The request function of one of the two apps, alternating. */
function via(i: number): TestContext["request"] {
  return i % 2 === 0 ? t.request : second.request;
}

function summarise(results: TestResponse<unknown>[]): string {
  return results.map((r) => `${r.status} ${r.text.slice(0, 160)}`).join("\n");
}

function codeOf(res: TestResponse<unknown>): string | undefined {
  return (res.body as Partial<ProblemBody> | undefined)?.code;
}

async function liveOrgsWithSlug(slug: string): Promise<Org[]> {
  const res = await t.request<ListBody<Org>>("GET", `/v1/organizations?slug=${slug}`);
  expectStatus(res, 200);
  return res.body.data;
}

describe("concurrent writes across two app instances", () => {
  it("lets exactly one of 50 parallel creates take a slug; the other 49 get 409 slug_taken", async () => {
    const slug = uniqueName("race");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        via(i)<Org>("POST", "/v1/organizations", { body: { name: `Racer ${i}`, slug } }),
      ),
    );
    const summary = summarise(results);
    const winners = results.filter((r) => r.status === 201);
    const losers = results.filter((r) => r.status === 409 && codeOf(r) === "slug_taken");
    expect(winners, summary).toHaveLength(1);
    expect(losers, summary).toHaveLength(49);

    const live = await liveOrgsWithSlug(slug);
    expect(live.map((o) => o.id)).toEqual([winners[0]?.body.id]);
  });

  it("gives 50 parallel creates with one name 50 distinct generated slugs", async () => {
    const name = `Popular ${uniqueName("name")}`;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => via(i)<Org>("POST", "/v1/organizations", { body: { name } })),
    );
    const summary = summarise(results);
    expect(
      results.every((r) => r.status === 201),
      summary,
    ).toBe(true);
    expect(new Set(results.map((r) => r.body.slug)).size, summary).toBe(50);
  });

  it("lets exactly one of 20 parallel PATCHes move 20 organizations to the same slug", async () => {
    const orgs = await Promise.all(Array.from({ length: 20 }, () => t.createOrg()));
    const slug = uniqueName("wanted");
    const results = await Promise.all(
      orgs.map((org, i) => via(i)<Org>("PATCH", `/v1/organizations/${org.id}`, { body: { slug } })),
    );
    const summary = summarise(results);
    const winners = results.filter((r) => r.status === 200);
    const losers = results.filter((r) => r.status === 409 && codeOf(r) === "slug_taken");
    expect(winners, summary).toHaveLength(1);
    expect(losers, summary).toHaveLength(19);

    const live = await liveOrgsWithSlug(slug);
    expect(live.map((o) => o.id)).toEqual([winners[0]?.body.id]);
    // The losers kept their own slugs.
    for (const org of orgs.filter((o) => o.id !== winners[0]?.body.id)) {
      const res = await t.request<Org>("GET", `/v1/organizations/${org.id}`);
      expectStatus(res, 200);
      expect(res.body.slug).toBe(org.slug);
    }
  });

  it("sees on one instance a revocation made on the other", async () => {
    const { org, key } = await t.createOrgWithKey();
    const keys = await second.request<ListBody<{ id: string }>>(
      "GET",
      `/v1/organizations/${org.id}/api-keys`,
    );
    expectStatus(keys, 200);
    const keyId = keys.body.data[0]?.id ?? "";
    expectStatus(await second.request("GET", "/v1/me", { key }), 200);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${keyId}`), 200);
    expectStatus(await second.request("GET", "/v1/me", { key }), 401);
  });
});
