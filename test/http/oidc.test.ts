/**
 * Member sign-in: tokens from the product's identity provider, verified against its JWKS (served by a
 * real local HTTP server), and what a verified token lets a person reach.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import { createOidcVerifier } from "../../src/infra/oidc.ts";
import {
  createSecondApp,
  createTestContext,
  expectStatus,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";
import { startTestIdentityProvider } from "../identity-provider.ts";

type Me = { type: string; user_id: string; subject: string; email: string | null; name: string | null };

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

function expectProblem(res: TestResponse<unknown>, status: number, code: string): void {
  expectStatus(res, status);
  const body = res.body as ProblemBody;
  expect(body.code, res.text).toBe(code);
  expect(res.headers.get("content-type"), res.text).toMatch(/^application\/problem\+json/);
}

describe("a sign-in token that does not verify is refused with a code saying why", () => {
  it("refuses an expired token: 401 token_expired", async () => {
    // Past the two minutes of clock skew the verifier allows.
    const token = await t.identity.sign({ subject: uniqueName("sub"), expiresIn: -600 });
    const res = await t.request("GET", "/v1/me", { key: token });
    expectProblem(res, 401, "token_expired");
    expect(res.headers.get("www-authenticate"), res.text).toMatch(/^Bearer /);
  });

  it("refuses a token from another issuer: 401 token_issuer_invalid", async () => {
    const token = await t.identity.sign({ subject: uniqueName("sub"), issuer: "https://evil.example/" });
    expectProblem(await t.request("GET", "/v1/me", { key: token }), 401, "token_issuer_invalid");
  });

  it("refuses a token meant for another audience: 401 token_audience_invalid", async () => {
    const token = await t.identity.sign({ subject: uniqueName("sub"), audience: "another-product" });
    expectProblem(await t.request("GET", "/v1/me", { key: token }), 401, "token_audience_invalid");
  });

  it("refuses a token signed with a key the JWKS does not publish: 401 token_signature_invalid", async () => {
    const token = await t.identity.sign({ subject: uniqueName("sub"), foreignKey: true });
    expectProblem(await t.request("GET", "/v1/me", { key: token }), 401, "token_signature_invalid");
  });

  it("refuses a token whose payload was altered after signing: 401 token_signature_invalid", async () => {
    const token = await t.identity.sign({ subject: uniqueName("sub") });
    const [header, payload, signature] = token.split(".");
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString("utf8")) as object;
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: "someone-else" })).toString("base64url");
    const res = await t.request("GET", "/v1/me", { key: `${header}.${forged}.${signature}` });
    expectProblem(res, 401, "token_signature_invalid");
  });

  it("refuses a malformed token: 401 token_invalid", async () => {
    const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const payload = part({ sub: "someone", exp: Math.floor(Date.now() / 1000) + 600 });
    for (const token of [
      "aaaa.bbbb.cccc",
      `${part({ typ: "JWT" })}.${payload}.c2ln`,
      `${part({ alg: "none" })}.${payload}.c2ln`,
    ]) {
      expectProblem(await t.request("GET", "/v1/me", { key: token }), 401, "token_invalid");
    }
  });

  it("refuses a token without a usable subject: 401 token_invalid", async () => {
    const missing = await t.identity.sign({ omitSubject: true });
    expectProblem(await t.request("GET", "/v1/me", { key: missing }), 401, "token_invalid");
    const empty = await t.identity.sign({ subject: "" });
    expectProblem(await t.request("GET", "/v1/me", { key: empty }), 401, "token_invalid");
  });

  it("gives each failure its own code", async () => {
    const codes = new Set<string>();
    for (const options of [
      { expiresIn: -600 },
      { issuer: "https://evil.example/" },
      { audience: "another-product" },
      { foreignKey: true },
    ]) {
      const token = await t.identity.sign({ subject: uniqueName("sub"), ...options });
      const res = await t.request<ProblemBody>("GET", "/v1/me", { key: token });
      expectStatus(res, 401);
      codes.add(res.body.code);
    }
    expect([...codes].sort()).toEqual([
      "token_audience_invalid",
      "token_expired",
      "token_issuer_invalid",
      "token_signature_invalid",
    ]);
  });
});

describe("a verified sign-in token", () => {
  it("answers GET /v1/me with the user it maps to", async () => {
    const org = await t.createOrg();
    const { token, userId, subject } = await t.createMember(org.id, "viewer");
    const res = await t.request<Me>("GET", "/v1/me", { key: token });
    expectStatus(res, 200);
    expect(res.body).toEqual({
      type: "user",
      user_id: userId,
      subject,
      email: `${subject}@example.test`,
      name: "Test User",
      active_org_id: org.id,
    });
    expect(res.body.user_id).toMatch(/^usr_/);
  });

  it("creates the user on first sign-in and keeps the same user afterwards", async () => {
    const subject = uniqueName("sub");
    const first = await t.request<Me>("GET", "/v1/me", { key: await t.identity.sign({ subject }) });
    expectStatus(first, 200);
    const again = await t.request<Me>("GET", "/v1/me", { key: await t.identity.sign({ subject }) });
    expectStatus(again, 200);
    expect(again.body.user_id).toBe(first.body.user_id);
    expect(first.body).toMatchObject({ type: "user", subject, active_org_id: null });
  });

  it("updates the user's email and name from the token's claims", async () => {
    const org = await t.createOrg();
    const { userId, subject } = await t.createMember(org.id, "member");
    const token = await t.identity.sign({
      subject,
      orgId: org.id,
      email: "New.Address@Example.test",
      name: "Renamed Person",
    });
    const me = await t.request<Me>("GET", "/v1/me", { key: token });
    expectStatus(me, 200);
    expect(me.body).toMatchObject({
      user_id: userId,
      email: "new.address@example.test",
      name: "Renamed Person",
    });

    const member = await t.request("GET", `/v1/organizations/${org.id}/members/${userId}`);
    expectStatus(member, 200);
    expect(member.body, member.text).toMatchObject({
      email: "new.address@example.test",
      name: "Renamed Person",
    });
  });

  it("acts in the organization its org claim names (GET /v1/organization)", async () => {
    const a = await t.createOrg();
    const b = await t.createOrg();
    const { subject, userId } = await t.createMember(a.id, "viewer");
    const inA = await t.request("GET", "/v1/organization", {
      key: await t.identity.sign({ subject, orgId: a.id }),
    });
    expectStatus(inA, 200);
    expect(inA.body.id, inA.text).toBe(a.id);

    // The same person, a member of B too: a token naming B acts in B.
    const now = new Date();
    await t.database.stores.memberships.insert({
      orgId: b.id,
      userId,
      role: "viewer",
      projectIds: null,
      invitedBy: null,
      createdAt: now,
      updatedAt: now,
    });
    const inB = await t.request("GET", "/v1/organization", {
      key: await t.identity.sign({ subject, orgId: b.id }),
    });
    expectStatus(inB, 200);
    expect(inB.body.id, inB.text).toBe(b.id);
  });

  it("answers 404 when the org claim names an organization the user is not a member of", async () => {
    const mine = await t.createOrg();
    const theirs = await t.createOrg({ name: uniqueName("not-yours") });
    const { subject } = await t.createMember(mine.id, "owner");
    for (const orgId of [theirs.id, "org_01jd0v4n6qf9yb5c8h2m3k7x1z", "not-an-id"]) {
      const token = await t.identity.sign({ subject, orgId });
      const res = await t.request("GET", "/v1/organization", { key: token });
      expectProblem(res, 404, "not_found");
      expect(res.text).not.toContain(theirs.name);
    }
  });

  it("is refused on /v1/organization without an org claim: 403 forbidden", async () => {
    const { token } = await t.signIn();
    expectProblem(await t.request("GET", "/v1/organization", { key: token }), 403, "forbidden");
  });

  it("reaches another organization's routes only as a 404", async () => {
    const a = await t.createOrg();
    const b = await t.createOrg({ name: uniqueName("org-b-secret") });
    const { token } = await t.createMember(a.id, "owner");
    for (const [method, path] of [
      ["GET", `/v1/organizations/${b.id}`],
      ["GET", `/v1/organizations/${b.id}/members`],
      ["GET", `/v1/organizations/${b.id}/api-keys`],
      ["PATCH", `/v1/organizations/${b.id}`],
    ] as const) {
      const res = await t.request(method, path, { key: token, ...(method === "PATCH" ? { body: {} } : {}) });
      expectProblem(res, 404, "not_found");
      expect(res.text).not.toContain(b.name);
    }
    const own = await t.request("GET", `/v1/organizations/${a.id}`, { key: token });
    expectStatus(own, 200);
  });

  it("is refused on operator routes: 403 operator_only", async () => {
    const org = await t.createOrg();
    const { token } = await t.createMember(org.id, "owner");
    const res = await t.request("POST", `/v1/organizations/${org.id}/suspend`, { key: token, body: {} });
    expectProblem(res, 403, "operator_only");
  });
});

describe("when the identity provider's keys cannot be fetched", () => {
  it("answers 503 service_unavailable with Retry-After, not 401", async () => {
    const provider = await startTestIdentityProvider();
    const second = createSecondApp(t, { identity: createOidcVerifier(provider) });
    const request = second.request;
    const token = await provider.sign({ subject: uniqueName("sub") });
    await provider.close();

    try {
      const res = await request("GET", "/v1/me", { key: token });
      expectProblem(res, 503, "service_unavailable");
      expect(Number(res.headers.get("retry-after")), res.text).toBeGreaterThan(0);
      // API keys do not depend on the identity provider.
      expectStatus(await request("GET", "/v1/me"), 200);
    } finally {
      await second.close();
    }
  });
});

describe("an email address the identity provider has not verified", () => {
  it("is not taken as the user's email (invitations match on it)", async () => {
    const subject = uniqueName("sub");
    const token = await t.identity.sign({
      subject,
      email: `${subject}@example.test`,
      extraClaims: { email_verified: false },
    });
    const res = await t.request<Me>("GET", "/v1/me", { key: token });
    expectStatus(res, 200);
    expect(res.body.email, res.text).toBeNull();

    const verified = await t.identity.sign({
      subject,
      email: `${subject}@example.test`,
      extraClaims: { email_verified: true },
    });
    const again = await t.request<Me>("GET", "/v1/me", { key: verified });
    expectStatus(again, 200);
    expect(again.body.email, again.text).toBe(`${subject}@example.test`);
  });
});
