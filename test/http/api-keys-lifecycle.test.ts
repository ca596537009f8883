import type { z } from "@hono/zod-openapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PROJECT_KEY_SCOPES } from "../../src/domain/auth/principal.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import type {
  ApiKeySchema,
  CreatedApiKeySchema,
  RotatedApiKeySchema,
} from "../../src/http/schemas/api-key.ts";
import { generateKey } from "../../src/lib/api-key-format.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ManualClock,
  type TestContext,
} from "../harness.ts";

type ApiKey = z.infer<typeof ApiKeySchema>;
type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;
type RotatedApiKey = z.infer<typeof RotatedApiKeySchema>;
type Verdict = Record<string, unknown>;

const HOUR_MS = 60 * 60 * 1000;

let t: TestContext;
let clock: ManualClock;
beforeAll(async () => {
  clock = createManualClock(new Date("2031-03-01T12:00:00.000Z"));
  t = await createTestContext({ clock });
});
afterAll(() => t.close());

const keysPath = (orgId: string) => `/v1/organizations/${orgId}/api-keys`;

async function createKey(orgId: string, body: Record<string, unknown>, key?: string): Promise<CreatedApiKey> {
  const res = await t.request<CreatedApiKey>("POST", keysPath(orgId), {
    body: { name: "backend", ...body },
    ...(key === undefined ? {} : { key }),
  });
  expectStatus(res, 201);
  return res.body;
}

async function createProject(orgId: string, name = "proj"): Promise<string> {
  const res = await t.request<{ id: string }>("POST", `/v1/organizations/${orgId}/projects`, {
    body: { name },
  });
  expectStatus(res, 201);
  return res.body.id;
}

async function status(key: string): Promise<{ status: number; code: unknown }> {
  const res = await t.request<ProblemBody>("GET", "/v1/me", { key });
  return { status: res.status, code: res.status === 200 ? null : res.body.code };
}

async function verify(key: string): Promise<Verdict> {
  const res = await t.request<Verdict>("POST", "/v1/keys/verify", { body: { key } });
  expectStatus(res, 200);
  return res.body;
}

describe("creating a key with every field", () => {
  it("stores and shows every attribute, never the secret", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const expiresAt = new Date(clock.now().getTime() + 24 * HOUR_MS).toISOString();
    const created = await createKey(org.id, {
      name: "  ingest  ",
      description: "Used by the ingest workers",
      environment: "test",
      scopes: ["usage:write", "projects:read"],
      project_id: projectId,
      expires_at: expiresAt,
      rate_limit_overrides: { search: 600, "bulk_import-v2": 10_000_000 },
      metadata: { team: "data", owners: ["a", "b"] },
    });
    expect(created.key).toMatch(/^sk_test_/);
    const expected = {
      name: "ingest",
      description: "Used by the ingest workers",
      environment: "test",
      scopes: ["projects:read", "usage:write"],
      project_id: projectId,
      expires_at: expiresAt,
      rate_limit_overrides: { search: 600, "bulk_import-v2": 10_000_000 },
      metadata: { team: "data", owners: ["a", "b"] },
      status: "active",
      last_used_at: null,
      rotated_from: null,
    };
    expect(created).toMatchObject(expected);
    const got = await t.request<ApiKey>("GET", `${keysPath(org.id)}/${created.id}`);
    expectStatus(got, 200);
    expect(got.body).toMatchObject(expected);
    expect(got.text).not.toContain(created.key);
    expect(Object.keys(got.body)).not.toContain("key");
  });

  it("gives a project key the project-key scopes the creator holds by default", async () => {
    const org = await t.createOrg();
    // More keys than the default (free) plan allows.
    await t.setPlan(org.id, "team");
    const projectId = await createProject(org.id);
    const byOperator = await createKey(org.id, { project_id: projectId });
    expect(byOperator.scopes).toEqual([...PROJECT_KEY_SCOPES].sort());
    const limited = await t.createKey(org.id, ["keys:write", "usage:read", "orgs:read"]);
    const byLimited = await createKey(org.id, { project_id: projectId }, limited);
    expect(byLimited.scopes).toEqual(["usage:read"]);
  });

  it("refuses organization scopes on a project key with 400 naming them", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const res = await t.request<ProblemBody>("POST", keysPath(org.id), {
      body: { name: "x", project_id: projectId, scopes: ["usage:read", "keys:write", "orgs:delete"] },
    });
    expectStatus(res, 400);
    expect(res.body.code).toBe("validation_failed");
    expect(res.body.detail).toContain("'keys:write'");
    expect(res.body.detail).toContain("'orgs:delete'");
    expect(res.body.detail).not.toContain("'usage:read'");
  });

  it("answers 404 for a project of another organization, a deleted one, or an unknown id", async () => {
    const org = await t.createOrg();
    const other = await t.createOrg();
    const foreign = await createProject(other.id);
    const deleted = await createProject(org.id, "deleted");
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/projects/${deleted}`), 200);
    for (const projectId of [foreign, deleted, "prj_nope"]) {
      const res = await t.request<ProblemBody>("POST", keysPath(org.id), {
        body: { name: "x", project_id: projectId },
      });
      expectStatus(res, 404);
      expect(res.body.detail).toContain(projectId);
    }
  });

  it("bounds rate_limit_overrides: category shape, 1..10M per minute, at most 32", async () => {
    const org = await t.createOrg();
    const tooMany = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`c${i}`, 1]));
    for (const overrides of [
      { Search: 1 },
      { "9x": 1 },
      { search: 0 },
      { search: 10_000_001 },
      { search: 1.5 },
      tooMany,
    ]) {
      const res = await t.request<ProblemBody>("POST", keysPath(org.id), {
        body: { name: "x", rate_limit_overrides: overrides },
      });
      expectStatus(res, 400);
    }
  });
});

describe("changing a key", () => {
  it("PATCHes name, description, scopes, expiry, overrides and metadata, and audits the change", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id, { scopes: ["orgs:read"], metadata: { a: 1 } });
    const expiresAt = new Date(clock.now().getTime() + HOUR_MS).toISOString();
    const res = await t.request<ApiKey>("PATCH", `${keysPath(org.id)}/${created.id}`, {
      body: {
        name: "renamed",
        description: "now described",
        scopes: ["orgs:read", "keys:read"],
        expires_at: expiresAt,
        rate_limit_overrides: { search: 5 },
        metadata: { b: 2 },
      },
    });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      name: "renamed",
      description: "now described",
      scopes: ["keys:read", "orgs:read"],
      expires_at: expiresAt,
      rate_limit_overrides: { search: 5 },
      metadata: { b: 2 },
    });
    expect((await status(created.key)).status).toBe(200);
    const events = await t.request<{
      data: { action: string; target_id: string; changes: Record<string, unknown> }[];
    }>("GET", `/v1/organizations/${org.id}/audit-events?action=api_key.updated`);
    const event = events.body.data.find((e) => e.target_id === created.id);
    expect(event?.changes.metadata).toEqual({ from: { a: 1 }, to: { b: 2 } });
    expect(JSON.stringify(events.body)).not.toContain(created.key);
  });

  it("never raises scopes above the caller's (403) and keeps a project key to project scopes (400)", async () => {
    const org = await t.createOrg();
    // More keys than the default (free) plan allows.
    await t.setPlan(org.id, "team");
    const caller = await t.createKey(org.id, ["keys:write", "orgs:read"]);
    const target = await createKey(org.id, { scopes: ["orgs:read"] });
    const res = await t.request<ProblemBody>("PATCH", `${keysPath(org.id)}/${target.id}`, {
      key: caller,
      body: { scopes: ["orgs:read", "orgs:delete"] },
    });
    expectStatus(res, 403);
    expect(res.body.code).toBe("insufficient_scope");
    const projectKey = await createKey(org.id, { project_id: await createProject(org.id) });
    const bad = await t.request<ProblemBody>("PATCH", `${keysPath(org.id)}/${projectKey.id}`, {
      body: { scopes: ["keys:read"] },
    });
    expectStatus(bad, 400);
    expect(bad.body.detail).toContain("'keys:read'");
  });

  it("refuses to change a revoked key with 409", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id, {});
    expectStatus(await t.request("DELETE", `${keysPath(org.id)}/${created.id}`), 200);
    const res = await t.request<ProblemBody>("PATCH", `${keysPath(org.id)}/${created.id}`, {
      body: { name: "x" },
    });
    expectStatus(res, 409);
    expect(res.body.code).toBe("invalid_state_transition");
  });
});

describe("rotating a key", () => {
  it("keeps both keys working through the overlap, then only the new one", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const old = await createKey(org.id, {
      project_id: projectId,
      description: "d",
      rate_limit_overrides: { search: 7 },
      metadata: { m: true },
    });
    const res = await t.request<RotatedApiKey>("POST", `${keysPath(org.id)}/${old.id}/rotate`, {
      body: { expire_previous_in_seconds: 3600 },
    });
    expectStatus(res, 201);
    const rotated = res.body;
    expect(rotated.key).not.toBe(old.key);
    expect(rotated).toMatchObject({
      name: old.name,
      description: "d",
      project_id: projectId,
      scopes: old.scopes,
      environment: old.environment,
      rate_limit_overrides: { search: 7 },
      metadata: { m: true },
      rotated_from: old.id,
      status: "active",
    });
    expect(rotated.previous.expires_at).toBe(new Date(clock.now().getTime() + HOUR_MS).toISOString());

    expect(await status(old.key)).toEqual({ status: 200, code: null });
    expect(await status(rotated.key)).toEqual({ status: 200, code: null });
    clock.advance(HOUR_MS);
    expect(await status(old.key)).toEqual({ status: 401, code: "key_expired" });
    expect(await status(rotated.key)).toEqual({ status: 200, code: null });
  });

  it("stops the previous key at once by default, and never extends its expiry", async () => {
    const org = await t.createOrg();
    const first = await createKey(org.id, {});
    const res = await t.request<RotatedApiKey>("POST", `${keysPath(org.id)}/${first.id}/rotate`);
    expectStatus(res, 201);
    expect(await status(first.key)).toEqual({ status: 401, code: "key_expired" });
    expect(await status(res.body.key)).toEqual({ status: 200, code: null });

    const soon = new Date(clock.now().getTime() + 60_000).toISOString();
    const second = await createKey(org.id, { expires_at: soon });
    const again = await t.request<RotatedApiKey>("POST", `${keysPath(org.id)}/${second.id}/rotate`, {
      body: { expire_previous_in_seconds: 604_800 },
    });
    expectStatus(again, 201);
    expect(again.body.previous.expires_at).toBe(soon);
  });

  it("refuses to rotate a revoked or expired key with 409, and bounds the overlap", async () => {
    const org = await t.createOrg();
    const revoked = await createKey(org.id, {});
    expectStatus(await t.request("DELETE", `${keysPath(org.id)}/${revoked.id}`), 200);
    const r1 = await t.request<ProblemBody>("POST", `${keysPath(org.id)}/${revoked.id}/rotate`);
    expectStatus(r1, 409);
    const expiring = await createKey(org.id, {
      expires_at: new Date(clock.now().getTime() + 1000).toISOString(),
    });
    clock.advance(1000);
    const r2 = await t.request<ProblemBody>("POST", `${keysPath(org.id)}/${expiring.id}/rotate`);
    expectStatus(r2, 409);
    expect(r2.body.code).toBe("invalid_state_transition");
    const live = await createKey(org.id, {});
    for (const n of [-1, 604_801, 1.5]) {
      const res = await t.request("POST", `${keysPath(org.id)}/${live.id}/rotate`, {
        body: { expire_previous_in_seconds: n },
      });
      expectStatus(res, 400);
    }
  });
});

describe("a project key", () => {
  it("cannot reach another project or any organization-management route", async () => {
    const org = await t.createOrg();
    const mine = await createProject(org.id, "mine");
    const theirs = await createProject(org.id, "theirs");
    const { key } = await createKey(org.id, { project_id: mine });
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}/projects/${mine}`, { key }), 200);
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}/projects/${theirs}`, { key }), 404);
    for (const [method, path] of [
      ["GET", keysPath(org.id)],
      ["POST", keysPath(org.id)],
      ["PATCH", `/v1/organizations/${org.id}`],
      ["DELETE", `/v1/organizations/${org.id}`],
      ["GET", `/v1/organizations/${org.id}/audit-events`],
      ["POST", `/v1/organizations/${org.id}/projects`],
    ] as const) {
      const body = method === "GET" || method === "DELETE" ? undefined : { name: "x" };
      const res = await t.request<ProblemBody>(method, path, { key, body });
      expect(res.status, `${method} ${path}: ${res.text}`).toBe(403);
    }
    const other = await t.createOrg();
    expectStatus(await t.request("GET", `/v1/organizations/${other.id}/projects`, { key }), 404);
  });
});

describe("POST /v1/keys/verify", () => {
  it("answers valid with the key's identity", async () => {
    const org = await t.createOrg();
    const projectId = await createProject(org.id);
    const expiresAt = new Date(clock.now().getTime() + HOUR_MS).toISOString();
    const created = await createKey(org.id, {
      project_id: projectId,
      expires_at: expiresAt,
      environment: "test",
    });
    expect(await verify(created.key)).toEqual({
      valid: true,
      key_id: created.id,
      org_id: org.id,
      project_id: projectId,
      scopes: created.scopes,
      environment: "test",
      expires_at: expiresAt,
    });
  });

  it("answers every reason a key is refused", async () => {
    const org = await t.createOrg();
    const good = generateKey("sk", "live");
    expect(await verify(`${good.slice(0, -1)}${good.endsWith("A") ? "B" : "A"}`)).toEqual({
      valid: false,
      reason: "malformed",
    });
    expect(await verify("hello")).toEqual({ valid: false, reason: "malformed" });
    expect(await verify(good)).toEqual({ valid: false, reason: "unknown" });

    const revoked = await createKey(org.id, {});
    expectStatus(await t.request("DELETE", `${keysPath(org.id)}/${revoked.id}`), 200);
    expect(await verify(revoked.key)).toEqual({ valid: false, reason: "key_revoked" });

    const expired = await createKey(org.id, {
      expires_at: new Date(clock.now().getTime() + 1000).toISOString(),
    });
    clock.advance(1000);
    expect(await verify(expired.key)).toEqual({ valid: false, reason: "key_expired" });

    const projectId = await createProject(org.id);
    const projectKey = await createKey(org.id, { project_id: projectId });
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/projects/${projectId}`), 200);
    expect(await verify(projectKey.key)).toEqual({ valid: false, reason: "project_deleted" });

    const suspended = await t.createOrg();
    const suspendedKey = await t.createKey(suspended.id);
    expectStatus(await t.request("POST", `/v1/organizations/${suspended.id}/suspend`, { body: {} }), 200);
    expect(await verify(suspendedKey)).toEqual({ valid: false, reason: "organization_suspended" });

    const deleted = await t.createOrg();
    const deletedKey = await t.createKey(deleted.id);
    expectStatus(await t.request("DELETE", `/v1/organizations/${deleted.id}`), 200);
    expect(await verify(deletedKey)).toEqual({ valid: false, reason: "organization_deleted" });
  });

  it("answers a malformed key without reading the database", async () => {
    const verdict = await t.services.apiKeys.verify("sk_live_not-a-key");
    expect(verdict).toEqual({ valid: false, reason: "malformed" });
    // The same through a service whose store would throw if touched.
    const { createApiKeysService } = await import("../../src/domain/api-keys/api-keys.service.ts");
    const untouchable = createApiKeysService({
      db: { transaction: () => Promise.reject(new Error("no database")) },
      stores: new Proxy({} as never, {
        get() {
          throw new Error("the database was read");
        },
      }),
      clock,
      prefixes: { orgKeyPrefix: "sk", operatorKeyPrefix: "op" },
      keyUsage: { record: () => {}, flush: () => Promise.resolve(0) },
      quotas: {
        enforce: () => Promise.reject(new Error("the quotas were read")),
        recordAlerts: () => Promise.reject(new Error("the quotas were read")),
      },
    });
    const bad = generateKey("sk", "live").slice(0, -2);
    expect(await untouchable.verify(`${bad}zz`)).toEqual({ valid: false, reason: "malformed" });
  });

  it("is for the operator only", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await t.request<ProblemBody>("POST", "/v1/keys/verify", { key, body: { key } });
    expectStatus(res, 403);
    expect(res.body.code).toBe("operator_only");
    expect(org.id).toMatch(/^org_/);
  });
});

describe("last_used_at", () => {
  it("is recorded in memory per request and written by one batched flush", async () => {
    const org = await t.createOrg();
    // More keys than the default (free) plan allows.
    await t.setPlan(org.id, "team");
    const a = await createKey(org.id, {});
    const b = await createKey(org.id, {});
    const unused = await createKey(org.id, {});
    await t.services.apiKeys.flushLastUsed();

    const usedAt = clock.now();
    expectStatus(await t.request("GET", "/v1/me", { key: a.key }), 200);
    expectStatus(await t.request("GET", "/v1/me", { key: b.key }), 200);
    const before = await t.request<ApiKey>("GET", `${keysPath(org.id)}/${a.id}`);
    expect(before.body.last_used_at, "no write per request").toBeNull();

    clock.advance(5000);
    expectStatus(await t.request("GET", "/v1/me", { key: b.key }), 200);
    expect(await t.services.apiKeys.flushLastUsed()).toBeGreaterThanOrEqual(2);

    const lastUsed = async (id: string) =>
      (await t.request<ApiKey>("GET", `${keysPath(org.id)}/${id}`)).body.last_used_at;
    expect(await lastUsed(a.id)).toBe(usedAt.toISOString());
    expect(await lastUsed(b.id)).toBe(new Date(usedAt.getTime() + 5000).toISOString());
    expect(await lastUsed(unused.id)).toBeNull();
    expect(await t.services.apiKeys.flushLastUsed(), "nothing left to write").toBe(0);
  });

  it("never moves last_used_at backwards", async () => {
    const org = await t.createOrg();
    const k = await createKey(org.id, {});
    await t.database.stores.apiKeys.touchLastUsed([{ keyId: k.id, at: new Date("2040-01-01T00:00:00Z") }]);
    await t.database.stores.apiKeys.touchLastUsed([{ keyId: k.id, at: new Date("2039-01-01T00:00:00Z") }]);
    const got = await t.request<ApiKey>("GET", `${keysPath(org.id)}/${k.id}`);
    expect(got.body.last_used_at).toBe("2040-01-01T00:00:00.000Z");
  });
});

describe("logs", () => {
  it("are captured at trace level for the whole file, and close() checks no key appears in them", async () => {
    const { key } = await t.createOrgWithKey();
    expectStatus(await t.request("GET", "/v1/me", { key }), 200);
    const lines = t.logLines.join("");
    expect(lines).toContain('"route":"/v1/me"');
    expect(lines).not.toContain(key);
  });
});
