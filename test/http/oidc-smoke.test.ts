import { afterAll, beforeAll, expect, it } from "vitest";
import { createTestContext, expectStatus, type TestContext } from "../harness.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

it("lets a member signed in through the identity provider read their organization", async () => {
  const org = await t.createOrg();
  const { token } = await t.createMember(org.id, "viewer");
  const res = await t.request("GET", "/v1/organization", { key: token });
  expectStatus(res, 200);
  expect(res.body.id).toBe(org.id);
  const patch = await t.request("PATCH", "/v1/organization", { key: token, body: { billing_name: "x" } });
  expectStatus(patch, 403);
});
