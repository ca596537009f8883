import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestContext, type TestContext } from "./harness.ts";

/**
 * `integrations.active(kind)`, what the exporters read: a change made by another process (written here
 * straight to the database, so this process's cache is not told) is seen at the next read once the cache
 * has expired, and a read that finds nothing changed answers the configurations it already holds.
 */

let t: TestContext;

beforeAll(async () => {
  t = await createTestContext({ integrations: { activeCacheMs: 0 } });
});

afterAll(async () => {
  await t?.close();
});

const ENDPOINT = "http://127.0.0.1:9/api/v1/write";

async function configured(): Promise<string> {
  const org = await t.createOrg();
  await t.services.integrations.put(t.operatorCtx, org.id, {
    prometheus: { endpoint: ENDPOINT, id: "first", token: `tok_${org.id}_first` },
  });
  return org.id;
}

async function sql(text: string, values: unknown[]): Promise<void> {
  await t.database.pool.query(text, values);
}

async function configOf(orgId: string) {
  return (await t.services.integrations.active("prometheus")).find((c) => c.orgId === orgId);
}

describe("integrations.active", () => {
  it("answers the configurations it holds while nothing changed", async () => {
    const orgId = await configured();
    const first = await t.services.integrations.active("prometheus");
    const second = await t.services.integrations.active("prometheus");
    expect(second).toBe(first);
    expect(second.find((c) => c.orgId === orgId)).toMatchObject({ id: "first", token: `tok_${orgId}_first` });
  });

  it("sees a change written by another process", async () => {
    const orgId = await configured();
    const before = await t.services.integrations.active("prometheus");
    expect(await configOf(orgId)).toMatchObject({ id: "first" });
    // Only the basic-auth id: the row's updated_at is left as it was, so the digest must see the value itself.
    await sql("update org_integrations set client_id = 'second' where org_id = $1 and kind = 'prometheus'", [
      orgId,
    ]);
    const after = await t.services.integrations.active("prometheus");
    expect(after).not.toBe(before);
    expect(after.find((c) => c.orgId === orgId)).toMatchObject({ id: "second", token: `tok_${orgId}_first` });
  });

  it("sees a new token", async () => {
    const orgId = await configured();
    expect(await configOf(orgId)).toMatchObject({ token: `tok_${orgId}_first` });
    await t.services.integrations.put(t.operatorCtx, orgId, {
      prometheus: { endpoint: ENDPOINT, id: "first", token: `tok_${orgId}_second` },
    });
    expect(await configOf(orgId)).toMatchObject({ token: `tok_${orgId}_second` });
  });

  it("drops a removed integration and a deleted organization's", async () => {
    const removed = await configured();
    const deleted = await configured();
    const kept = await configured();
    expect(await configOf(removed)).toBeDefined();
    await sql("delete from org_integrations where org_id = $1", [removed]);
    await sql("update organizations set status = 'deleted' where id = $1", [deleted]);
    const after = await t.services.integrations.active("prometheus");
    expect(after.find((c) => c.orgId === removed)).toBeUndefined();
    expect(after.find((c) => c.orgId === deleted)).toBeUndefined();
    expect(after.find((c) => c.orgId === kept)).toBeDefined();
  });
});
