import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import { createTestContext, expectStatus, type TestContext } from "../harness.ts";

type Me = Record<string, unknown> & { type: string; key_id: string };
type CreatedKey = { id: string; key: string };

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

describe("GET /v1/me", () => {
  it("names the operator credential", async () => {
    const res = await t.request<Me>("GET", "/v1/me");
    expectStatus(res, 200);
    expect(res.body).toEqual({
      type: "operator",
      key_id: t.operatorCtx.principal.id,
      name: "test operator",
    });
    expect(res.body.key_id).toMatch(/^opk_/);
  });

  it("names an org key with its organization, environment and scopes", async () => {
    const org = await t.createOrg();
    const created = await t.request<CreatedKey>("POST", `/v1/organizations/${org.id}/api-keys`, {
      body: { name: "ci runner", environment: "test", scopes: ["orgs:read", "audit:read"] },
    });
    expectStatus(created, 201);
    const res = await t.request<Me>("GET", "/v1/me", { key: created.body.key });
    expectStatus(res, 200);
    expect(res.body).toEqual({
      type: "api_key",
      key_id: created.body.id,
      name: "ci runner",
      org_id: org.id,
      project_id: null,
      environment: "test",
      scopes: ["audit:read", "orgs:read"],
    });
  });

  it("answers any org key, whatever its scopes", async () => {
    const org = await t.createOrg();
    const key = await t.createKey(org.id, []);
    const res = await t.request<Me>("GET", "/v1/me", { key });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ type: "api_key", org_id: org.id, scopes: [] });
  });

  it("answers 401 to no credential and to a credential it never issued", async () => {
    const none = await t.request<ProblemBody>("GET", "/v1/me", { key: undefined });
    expectStatus(none, 401);
    expect(none.body.code, none.text).toBe("unauthenticated");
    expect(none.headers.get("WWW-Authenticate")).toContain("Bearer");

    const bogus = await t.request<ProblemBody>("GET", "/v1/me", { key: "sk_live_nope" });
    expectStatus(bogus, 401);
    expect(bogus.body.code, bogus.text).toBe("invalid_credential");
  });

  it("refuses a suspended organization's key with 403, as every route but reading the org itself", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`), 200);
    const res = await t.request<ProblemBody>("GET", "/v1/me", { key });
    expectStatus(res, 403);
    expect(res.body.code, res.text).toBe("organization_suspended");
  });

  it("refuses a deleted organization's key with 401", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}`), 200);
    const res = await t.request<ProblemBody>("GET", "/v1/me", { key });
    expectStatus(res, 401);
    expect(res.body.code, res.text).toBe("invalid_credential");
  });

  it("carries X-Request-Id, keeping a plain one the caller sent", async () => {
    const minted = await t.request("GET", "/v1/me");
    expect(minted.headers.get("X-Request-Id")).toMatch(/^req_[0-9a-z]{26}$/);
    const kept = await t.request("GET", "/v1/me", { headers: { "X-Request-Id": "trace-abc.123" } });
    expect(kept.headers.get("X-Request-Id")).toBe("trace-abc.123");
    const replaced = await t.request("GET", "/v1/me", { headers: { "X-Request-Id": "bad id with spaces" } });
    expect(replaced.headers.get("X-Request-Id")).toMatch(/^req_/);
  });
});
