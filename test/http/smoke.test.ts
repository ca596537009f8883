import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext, expectStatus, type TestContext } from "../harness.ts";

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

describe("organizations", () => {
  it("creates an organization with the operator key and reads it back with an org key", async () => {
    const created = await t.request("POST", "/v1/organizations", { body: { name: "Smoke Test Inc" } });
    expectStatus(created, 201);
    const id = String(created.body.id);
    const key = await t.createKey(id);
    const me = await t.request("GET", "/v1/organization", { key });
    expectStatus(me, 200);
    expect(me.body.id).toBe(id);
  });
});
