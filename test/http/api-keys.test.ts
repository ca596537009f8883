import type { z } from "@hono/zod-openapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ORG_SCOPES } from "../../src/domain/auth/principal.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import type { ApiKeySchema, CreatedApiKeySchema } from "../../src/http/schemas/api-key.ts";
import { generateKey } from "../../src/lib/api-key-format.ts";
import { sha256Hex } from "../../src/lib/hash.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ListBody,
  type ManualClock,
  type TestContext,
} from "../harness.ts";

type ApiKey = z.infer<typeof ApiKeySchema>;
type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;
type Me = { type: string; key_id: string; org_id?: string; scopes?: string[] };

const HOUR_MS = 60 * 60 * 1000;

let t: TestContext;
let clock: ManualClock;
beforeAll(async () => {
  // Expiry is decided by the service's clock; moving it by hand tests expiry without sleeping.
  clock = createManualClock();
  t = await createTestContext({ clock });
});
afterAll(() => t.close());

async function createKey(
  orgId: string,
  body: Record<string, unknown> = {},
  key: string = t.operatorKey,
): Promise<CreatedApiKey> {
  const res = await t.request<CreatedApiKey>("POST", `/v1/organizations/${orgId}/api-keys`, {
    key,
    body: { name: "backend", ...body },
  });
  expectStatus(res, 201);
  return res.body;
}

async function me(key: string): Promise<Me> {
  const res = await t.request<Me>("GET", "/v1/me", { key });
  expectStatus(res, 200);
  return res.body;
}

async function expectRefused(key: string, code = "invalid_credential"): Promise<void> {
  const res = await t.request<ProblemBody>("GET", "/v1/me", { key });
  expectStatus(res, 401);
  expect(res.body.code, res.text).toBe(code);
  expect(res.headers.get("WWW-Authenticate")).toContain("Bearer");
}

describe("creating an API key", () => {
  it("returns the plaintext once, in the documented format", async () => {
    const org = await t.createOrg();
    const live = await createKey(org.id, { name: "production" });
    expect(live.key).toMatch(/^sk_live_[0-9A-Za-z]{38}$/);
    expect(live).toMatchObject({
      object: "api_key",
      org_id: org.id,
      name: "production",
      environment: "live",
      key_prefix: live.key.slice(0, "sk_live_".length + 4),
      last_four: live.key.slice(-4),
      status: "active",
      expires_at: null,
      revoked_at: null,
      created_by: t.operatorCtx.principal.id,
    });
    expect(live.id).toMatch(/^key_[0-9a-z]{26}$/);

    const test = await createKey(org.id, { environment: "test" });
    expect(test.key).toMatch(/^sk_test_[0-9A-Za-z]{38}$/);
    expect(test.environment).toBe("test");
    expect(test.key).not.toBe(live.key);

    const read = await t.request<ApiKey>("GET", `/v1/organizations/${org.id}/api-keys/${live.id}`);
    expectStatus(read, 200);
    const { key: _plaintext, ...shown } = live;
    expect(read.body).toEqual(shown);
  });

  it("gives a new key every scope by default, or exactly the scopes named", async () => {
    const org = await t.createOrg();
    const all = await createKey(org.id);
    expect([...all.scopes].sort()).toEqual([...ORG_SCOPES].sort());
    const some = await createKey(org.id, { scopes: ["orgs:read", "keys:read", "orgs:read"] });
    expect(some.scopes).toEqual(["keys:read", "orgs:read"]);
    expect((await me(some.key)).scopes).toEqual(["keys:read", "orgs:read"]);
  });

  it("makes a key that authenticates at once as its organization", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id);
    expect(await me(created.key)).toMatchObject({ type: "api_key", key_id: created.id, org_id: org.id });
  });

  it("refuses an expires_at that is not in the future with 400", async () => {
    const org = await t.createOrg();
    for (const expiresAt of [new Date(clock.now().getTime() - 1000).toISOString(), "not a date"]) {
      const res = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/api-keys`, {
        body: { name: "late", expires_at: expiresAt },
      });
      expectStatus(res, 400);
      expect(res.body.code, res.text).toBe("validation_failed");
      expect(res.body.errors?.[0]?.path, res.text).toBe("expires_at");
    }
  });

  it("does not let a key grant scopes it lacks (403 insufficient_scope)", async () => {
    const org = await t.createOrg();
    const limited = await t.createKey(org.id, ["keys:read", "keys:write", "orgs:read"]);
    for (const scopes of [["orgs:write"], ["keys:write", "audit:read"]]) {
      const res = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/api-keys`, {
        key: limited,
        body: { name: "escalation", scopes },
      });
      expectStatus(res, 403);
      expect(res.body.code, res.text).toBe("insufficient_scope");
    }
    const narrower = await createKey(org.id, { scopes: ["orgs:read"] }, limited);
    expect(narrower.scopes).toEqual(["orgs:read"]);
    expect(narrower.created_by).toBe((await me(limited)).key_id);
  });

  it("gives a key minted by a limited key the creator's own scopes when none are named", async () => {
    const org = await t.createOrg();
    const limited = await t.createKey(org.id, ["keys:read", "keys:write", "orgs:read"]);
    const minted = await createKey(org.id, {}, limited);
    expect(minted.scopes).toEqual(["keys:read", "keys:write", "orgs:read"]);
  });

  it("refuses a key without keys:write with 403 insufficient_scope", async () => {
    const org = await t.createOrg();
    const reader = await t.createKey(org.id, ["keys:read"]);
    const res = await t.request<ProblemBody>("POST", `/v1/organizations/${org.id}/api-keys`, {
      key: reader,
      body: { name: "x", scopes: ["keys:read"] },
    });
    expectStatus(res, 403);
    expect(res.body.code, res.text).toBe("insufficient_scope");
  });
});

describe("listing API keys", () => {
  it("shows key_prefix and last_four, never the plaintext or its hash", async () => {
    const org = await t.createOrg();
    const created = [await createKey(org.id), await createKey(org.id, { environment: "test" })];
    const res = await t.request<ListBody<ApiKey>>("GET", `/v1/organizations/${org.id}/api-keys`);
    expectStatus(res, 200);
    expect(res.body.data.map((k) => k.id)).toEqual(created.map((k) => k.id).reverse());
    for (const { key } of created) {
      expect(res.text).not.toContain(key);
      expect(res.text).not.toContain(key.slice(8, 38));
      expect(res.text).not.toContain(sha256Hex(key));
    }
    for (const listed of res.body.data) {
      expect(Object.keys(listed)).not.toContain("key");
      expect(Object.keys(listed)).not.toContain("key_hash");
    }
  });

  it("pages with limit and cursor", async () => {
    const org = await t.createOrg();
    // More keys than the default (free) plan allows.
    await t.setPlan(org.id, "team");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createKey(org.id)).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "" : `&cursor=${cursor}`;
      const page = await t.request<ListBody<ApiKey>>(
        "GET",
        `/v1/organizations/${org.id}/api-keys?limit=2${query}`,
      );
      expectStatus(page, 200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((k) => k.id));
      cursor = page.body.next_cursor;
      expect(page.body.has_more).toBe(cursor !== null);
    } while (cursor !== null && seen.length <= ids.length);
    expect(seen).toEqual([...ids].reverse());

    const bad = await t.request<ProblemBody>("GET", `/v1/organizations/${org.id}/api-keys?cursor=nope`);
    expectStatus(bad, 400);
    expect(bad.body.code, bad.text).toBe("invalid_cursor");
  });

  it("leaves revoked keys out unless include_revoked=true", async () => {
    const org = await t.createOrg();
    const kept = await createKey(org.id);
    const revoked = await createKey(org.id);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${revoked.id}`), 200);

    const active = await t.request<ListBody<ApiKey>>("GET", `/v1/organizations/${org.id}/api-keys`);
    expectStatus(active, 200);
    expect(active.body.data.map((k) => k.id)).toEqual([kept.id]);

    const all = await t.request<ListBody<ApiKey>>(
      "GET",
      `/v1/organizations/${org.id}/api-keys?include_revoked=true`,
    );
    expectStatus(all, 200);
    expect(all.body.data.map((k) => [k.id, k.status])).toEqual([
      [revoked.id, "revoked"],
      [kept.id, "active"],
    ]);

    const bad = await t.request("GET", `/v1/organizations/${org.id}/api-keys?include_revoked=yes`);
    expectStatus(bad, 400);
  });

  it("lets an org key list its own keys and answers 404 for another org's", async () => {
    const { org, key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    const own = await t.request<ListBody<ApiKey>>("GET", `/v1/organizations/${org.id}/api-keys`, { key });
    expectStatus(own, 200);
    expect(own.body.data).toHaveLength(1);
    const foreign = await t.request<ProblemBody>("GET", `/v1/organizations/${other.id}/api-keys`, { key });
    expectStatus(foreign, 404);
    expect(foreign.body.code, foreign.text).toBe("not_found");
  });
});

describe("reading and revoking an API key", () => {
  it("answers 404 for another organization's key id, even to the operator", async () => {
    const mine = await t.createOrg();
    const theirs = await t.createOrg();
    const theirKey = await createKey(theirs.id);
    for (const method of ["GET", "DELETE"]) {
      const res = await t.request<ProblemBody>(
        method,
        `/v1/organizations/${mine.id}/api-keys/${theirKey.id}`,
      );
      expectStatus(res, 404);
      expect(res.body.code, res.text).toBe("not_found");
      expect(res.body.detail, res.text).toContain(`'${theirKey.id}'`);
    }
    expect((await me(theirKey.key)).key_id).toBe(theirKey.id);
  });

  it("answers 404 for a key id of the wrong shape", async () => {
    const org = await t.createOrg();
    for (const id of ["nope", "org_01jd0v4n6qf9yb5c8h2m3k7x1z", "key_01jd0v4n6qf9yb5c8h2m3k7x1z"]) {
      const res = await t.request<ProblemBody>("GET", `/v1/organizations/${org.id}/api-keys/${id}`);
      expectStatus(res, 404);
    }
  });

  it("refuses a revoked key at once with 401 key_revoked", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id);
    expect((await me(created.key)).key_id).toBe(created.id);

    const res = await t.request<ApiKey>("DELETE", `/v1/organizations/${org.id}/api-keys/${created.id}`);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ id: created.id, status: "revoked" });
    expect(res.body.revoked_at).not.toBeNull();

    await expectRefused(created.key, "key_revoked");
  });

  it("returns a revoked key unchanged when it is revoked again", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id);
    const first = await t.request<ApiKey>("DELETE", `/v1/organizations/${org.id}/api-keys/${created.id}`);
    expectStatus(first, 200);
    clock.advance(1000);
    const second = await t.request<ApiKey>("DELETE", `/v1/organizations/${org.id}/api-keys/${created.id}`);
    expectStatus(second, 200);
    expect(second.body).toEqual(first.body);
  });

  it("lets a key revoke itself, after which it is refused", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id);
    const res = await t.request<ApiKey>("DELETE", `/v1/organizations/${org.id}/api-keys/${created.id}`, {
      key: created.key,
    });
    expectStatus(res, 200);
    await expectRefused(created.key, "key_revoked");
  });
});

describe("authenticating with an API key", () => {
  it("refuses a key once its expires_at has passed, with 401 key_expired", async () => {
    const org = await t.createOrg();
    const expiresAt = new Date(clock.now().getTime() + HOUR_MS);
    const created = await createKey(org.id, { expires_at: expiresAt.toISOString() });
    expect(created.expires_at).toBe(expiresAt.toISOString());
    expect((await me(created.key)).key_id).toBe(created.id);

    clock.set(new Date(expiresAt.getTime() - 1));
    expect((await me(created.key)).key_id).toBe(created.id);

    clock.set(expiresAt);
    await expectRefused(created.key, "key_expired");
    clock.advance(HOUR_MS);
    await expectRefused(created.key, "key_expired");

    const read = await t.request<ApiKey>("GET", `/v1/organizations/${org.id}/api-keys/${created.id}`);
    expectStatus(read, 200);
    expect(read.body.status).toBe("expired");
  });

  it("refuses a key whose checksum does not match without knowing it", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id);
    const last = created.key.at(-1);
    const flipped = `${created.key.slice(0, -1)}${last === "a" ? "b" : "a"}`;
    const swapped = `${created.key.slice(0, 8)}${created.key.slice(9, 10)}${created.key.slice(8, 9)}${created.key.slice(10)}`;
    for (const broken of [flipped, swapped, created.key.slice(0, -1), `${created.key}x`]) {
      if (broken !== created.key) {
        await expectRefused(broken);
      }
    }
    // Well-formed, correct checksum, never issued.
    await expectRefused(generateKey("sk", "live"));
    await expectRefused(generateKey("op", "live"));
    await expectRefused(generateKey("pk", "live"));
    await expectRefused("not a key at all");
  });

  it("accepts the key as Authorization: Bearer and as X-API-Key", async () => {
    const org = await t.createOrg();
    const created = await createKey(org.id);
    for (const headers of [
      { Authorization: `Bearer ${created.key}` },
      { Authorization: `bearer ${created.key}` },
      { "X-API-Key": created.key },
    ]) {
      const res = await t.request<Me>("GET", "/v1/me", { key: undefined, headers });
      expectStatus(res, 200);
      expect(res.body.key_id).toBe(created.id);
    }
  });

  it("answers 401 unauthenticated when no credential is sent", async () => {
    const res = await t.request<ProblemBody>("GET", `/v1/organizations`, { key: undefined });
    expectStatus(res, 401);
    expect(res.body.code, res.text).toBe("unauthenticated");
  });
});
