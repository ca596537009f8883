/**
 * Members and roles: who belongs to an organization, who may change whom, the last owner, and what
 * leaving takes with it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Role } from "../../src/domain/auth/principal.ts";
import type { Organization } from "../../src/domain/orgs/orgs.types.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import {
  createTestContext,
  expectStatus,
  type ListBody,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";

type MemberBody = {
  object: string;
  org_id: string;
  user_id: string;
  role: Role;
  project_ids: string[] | null;
  email: string | null;
  name: string | null;
  avatar_url: string | null;
  created_at: string;
  updated_at: string;
};
type AuditBody = {
  action: string;
  actor_type: string;
  actor_id: string | null;
  target_type: string;
  target_id: string;
  changes: Record<string, { from?: unknown; to?: unknown }>;
};
type Person = { token: string; userId: string; subject: string };

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

function expectProblem(res: TestResponse<unknown>, status: number, code: string): void {
  expectStatus(res, status);
  expect((res.body as ProblemBody).code, res.text).toBe(code);
}

const memberPath = (orgId: string, userId: string) => `/v1/organizations/${orgId}/members/${userId}`;

function setRole(orgId: string, userId: string, role: Role, key?: string) {
  return t.request<MemberBody>("PATCH", memberPath(orgId, userId), {
    body: { role },
    ...(key === undefined ? {} : { key }),
  });
}

function removeMember(orgId: string, userId: string, key?: string) {
  return t.request("DELETE", memberPath(orgId, userId), key === undefined ? {} : { key });
}

async function roleOf(orgId: string, userId: string): Promise<Role | undefined> {
  const res = await t.request<MemberBody>("GET", memberPath(orgId, userId));
  return res.status === 200 ? res.body.role : undefined;
}

async function auditEvents(orgId: string, action: string): Promise<AuditBody[]> {
  const res = await t.request<ListBody<AuditBody>>(
    "GET",
    `/v1/organizations/${orgId}/audit-events?action=${action}&limit=100`,
  );
  expectStatus(res, 200);
  return res.body.data;
}

/** An organization with one person in each role. */
async function team(): Promise<{ org: Organization } & Record<Role, Person>> {
  const org = await t.createOrg();
  return {
    org,
    owner: await t.createMember(org.id, "owner"),
    admin: await t.createMember(org.id, "admin"),
    member: await t.createMember(org.id, "member"),
    viewer: await t.createMember(org.id, "viewer"),
    billing: await t.createMember(org.id, "billing"),
  };
}

describe("listing and reading members", () => {
  it("lists every member with their profile, newest first, and filters by role", async () => {
    const { org, owner, admin, member, viewer, billing } = await team();
    const res = await t.request<ListBody<MemberBody>>("GET", `/v1/organizations/${org.id}/members`);
    expectStatus(res, 200);
    expect(res.body.has_more).toBe(false);
    expect(res.body.data.map((m) => m.user_id)).toEqual(
      [owner, admin, member, viewer, billing]
        .map((p) => p.userId)
        .sort()
        .reverse(),
    );
    const first = res.body.data.find((m) => m.user_id === owner.userId);
    expect(first).toEqual({
      object: "member",
      org_id: org.id,
      user_id: owner.userId,
      role: "owner",
      project_ids: null,
      email: `${owner.subject}@example.test`,
      name: "Test User",
      avatar_url: null,
      created_at: expect.any(String),
      updated_at: expect.any(String),
    });

    const admins = await t.request<ListBody<MemberBody>>(
      "GET",
      `/v1/organizations/${org.id}/members?role=admin`,
    );
    expectStatus(admins, 200);
    expect(admins.body.data.map((m) => m.user_id)).toEqual([admin.userId]);

    const bad = await t.request("GET", `/v1/organizations/${org.id}/members?role=superuser`);
    expectProblem(bad, 400, "validation_failed");
  });

  it("pages through members with the cursor, each exactly once", async () => {
    const { org } = await team();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "" : `&cursor=${cursor}`;
      const page: TestResponse<ListBody<MemberBody>> = await t.request<ListBody<MemberBody>>(
        "GET",
        `/v1/organizations/${org.id}/members?limit=2${query}`,
      );
      expectStatus(page, 200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((m) => m.user_id));
      cursor = page.body.next_cursor;
    } while (cursor !== null);
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);

    const tampered = await t.request("GET", `/v1/organizations/${org.id}/members?cursor=nope`);
    expectProblem(tampered, 400, "invalid_cursor");
  });

  it("lets a viewer read members but not a billing manager (no members:read)", async () => {
    const { org, viewer, billing } = await team();
    expectStatus(await t.request("GET", `/v1/organizations/${org.id}/members`, { key: viewer.token }), 200);
    const refused = await t.request("GET", `/v1/organizations/${org.id}/members`, { key: billing.token });
    expectProblem(refused, 403, "insufficient_scope");
  });

  it("answers 404 for an unknown member, a malformed id, and another organization's member", async () => {
    const { org } = await team();
    const other = await t.createOrg();
    const stranger = await t.createMember(other.id, "owner");
    for (const id of [
      "usr_01jd0v4n6qf9yb5c8h2m3k7x1z",
      "nope",
      "org_01jd0v4n6qf9yb5c8h2m3k7x1z",
      stranger.userId,
    ]) {
      const res = await t.request("GET", memberPath(org.id, id));
      expectProblem(res, 404, "not_found");
      expect((res.body as ProblemBody).detail, res.text).toContain(id);
    }
  });
});

describe("changing a member's role", () => {
  it("changes the role, takes effect on the member's next request, and records it", async () => {
    const { org, owner, viewer } = await team();
    const denied = await t.request("GET", `/v1/organizations/${org.id}/audit-events`, { key: viewer.token });
    expectProblem(denied, 403, "insufficient_scope");

    const res = await setRole(org.id, viewer.userId, "admin", owner.token);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ object: "member", user_id: viewer.userId, role: "admin" });
    expect(await roleOf(org.id, viewer.userId)).toBe("admin");

    const allowed = await t.request("GET", `/v1/organizations/${org.id}/audit-events`, { key: viewer.token });
    expectStatus(allowed, 200);

    const [event] = await auditEvents(org.id, "member.role_updated");
    expect(event).toMatchObject({
      actor_type: "user",
      actor_id: owner.userId,
      target_type: "member",
      target_id: viewer.userId,
      changes: { role: { from: "viewer", to: "admin" } },
    });
  });

  it("refuses an unknown role and unknown fields: 400", async () => {
    const { org, viewer } = await team();
    expectProblem(await setRole(org.id, viewer.userId, "root" as Role), 400, "validation_failed");
    const extra = await t.request("PATCH", memberPath(org.id, viewer.userId), {
      body: { role: "member", is_admin: true },
    });
    expectProblem(extra, 400, "validation_failed");
  });

  it("does not let an admin grant owner: 403 role_ceiling", async () => {
    const { org, admin, member } = await team();
    const res = await setRole(org.id, member.userId, "owner", admin.token);
    expectProblem(res, 403, "role_ceiling");
    expect(await roleOf(org.id, member.userId)).toBe("member");
  });

  it("does not let an admin demote an owner: 403 role_ceiling", async () => {
    const { org, owner, admin } = await team();
    const res = await setRole(org.id, owner.userId, "viewer", admin.token);
    expectProblem(res, 403, "role_ceiling");
    expect(await roleOf(org.id, owner.userId)).toBe("owner");
  });

  it("does not let an admin promote themselves to owner: 403 role_ceiling", async () => {
    const { org, admin } = await team();
    expectProblem(await setRole(org.id, admin.userId, "owner", admin.token), 403, "role_ceiling");
  });

  it("lets an admin change roles within their own (admin, member, viewer)", async () => {
    const { org, admin, viewer } = await team();
    expectStatus(await setRole(org.id, viewer.userId, "member", admin.token), 200);
    expectStatus(await setRole(org.id, viewer.userId, "admin", admin.token), 200);
    expect(await roleOf(org.id, viewer.userId)).toBe("admin");
  });

  it("does not let an admin grant or change the billing role, whose scopes an admin lacks", async () => {
    const { org, admin, viewer, billing } = await team();
    expectProblem(await setRole(org.id, viewer.userId, "billing", admin.token), 403, "role_ceiling");
    expectProblem(await setRole(org.id, billing.userId, "viewer", admin.token), 403, "role_ceiling");
  });

  it("does not let a member, a viewer or a billing manager change roles: 403 insufficient_scope", async () => {
    const { org, member, viewer, billing } = await team();
    for (const caller of [member, viewer, billing]) {
      const res = await setRole(org.id, viewer.userId, "member", caller.token);
      expectProblem(res, 403, "insufficient_scope");
    }
    expect(await roleOf(org.id, viewer.userId)).toBe("viewer");
  });

  it("holds an API key to the same ceiling: it grants only roles whose scopes it holds", async () => {
    const { org, viewer } = await team();
    const key = await t.createKey(org.id, [
      "members:read",
      "members:write",
      "orgs:read",
      "usage:read",
      "keys:read",
    ]);
    expectProblem(await setRole(org.id, viewer.userId, "member", key), 403, "role_ceiling");
    const strong = await t.createKey(org.id);
    expectStatus(await setRole(org.id, viewer.userId, "owner", strong), 200);
  });

  it("lets an owner hand over ownership and then step down", async () => {
    const { org, owner, admin } = await team();
    expectStatus(await setRole(org.id, admin.userId, "owner", owner.token), 200);
    expectStatus(await setRole(org.id, owner.userId, "admin", owner.token), 200);
    expect(await roleOf(org.id, owner.userId)).toBe("admin");
    expect(await roleOf(org.id, admin.userId)).toBe("owner");
  });
});

describe("the last owner", () => {
  it("cannot be demoted, by themselves or by the operator: 409 last_owner", async () => {
    const { org, owner } = await team();
    expectProblem(await setRole(org.id, owner.userId, "admin", owner.token), 409, "last_owner");
    expectProblem(await setRole(org.id, owner.userId, "admin"), 409, "last_owner");
    expect(await roleOf(org.id, owner.userId)).toBe("owner");
  });

  it("cannot be removed, and cannot leave: 409 last_owner", async () => {
    const { org, owner } = await team();
    expectProblem(await removeMember(org.id, owner.userId), 409, "last_owner");
    expectProblem(await removeMember(org.id, owner.userId, owner.token), 409, "last_owner");
    expect(await roleOf(org.id, owner.userId)).toBe("owner");
  });

  it("survives two owners demoting themselves at the same moment: exactly one is refused", async () => {
    // Several rounds: one lucky interleaving proves little.
    for (let round = 0; round < 5; round++) {
      const org = await t.createOrg();
      const a = await t.createMember(org.id, "owner");
      const b = await t.createMember(org.id, "owner");
      const results = await Promise.all([
        setRole(org.id, a.userId, "admin", a.token),
        setRole(org.id, b.userId, "admin", b.token),
      ]);
      const statuses = results.map((r) => r.status).sort();
      expect(statuses, results.map((r) => r.text).join("\n")).toEqual([200, 409]);
      const owners = await t.request<ListBody<MemberBody>>(
        "GET",
        `/v1/organizations/${org.id}/members?role=owner`,
      );
      expect(owners.body.data, owners.text).toHaveLength(1);
    }
  });

  it("survives a removal and a demotion of the last two owners at the same moment", async () => {
    for (let round = 0; round < 5; round++) {
      const org = await t.createOrg();
      const a = await t.createMember(org.id, "owner");
      const b = await t.createMember(org.id, "owner");
      const results = await Promise.all([
        removeMember(org.id, a.userId),
        setRole(org.id, b.userId, "viewer"),
      ]);
      const refused = results.filter((r) => r.status === 409);
      expect(refused, results.map((r) => r.text).join("\n")).toHaveLength(1);
      expect(results.every((r) => r.status < 300 || r.status === 409)).toBe(true);
      const owners = await t.request<ListBody<MemberBody>>(
        "GET",
        `/v1/organizations/${org.id}/members?role=owner`,
      );
      expect(owners.body.data, owners.text).toHaveLength(1);
    }
  });
});

describe("removing a member", () => {
  it("removes the member, refuses their token there afterwards, and records it", async () => {
    const { org, owner, member } = await team();
    const res = await removeMember(org.id, member.userId, owner.token);
    expectStatus(res, 204);
    expectProblem(await t.request("GET", memberPath(org.id, member.userId)), 404, "not_found");
    expectProblem(await t.request("GET", "/v1/organization", { key: member.token }), 404, "not_found");

    const [event] = await auditEvents(org.id, "member.removed");
    expect(event).toMatchObject({
      actor_type: "user",
      actor_id: owner.userId,
      target_type: "member",
      target_id: member.userId,
      changes: { role: { from: "member", to: null } },
    });
  });

  it("revokes every API key the member created in the organization, and only those", async () => {
    const { org, owner, member } = await team();
    // More keys than the default (free) plan allows.
    await t.setPlan(org.id, "team");
    const mine: { id: string; key: string }[] = [];
    for (const name of ["laptop", "ci"]) {
      const created = await t.request<{ id: string; key: string }>(
        "POST",
        `/v1/organizations/${org.id}/api-keys`,
        {
          key: member.token,
          body: { name, scopes: ["orgs:read"] },
        },
      );
      expectStatus(created, 201);
      mine.push(created.body);
    }
    const ownersKey = await t.request<{ id: string; key: string }>(
      "POST",
      `/v1/organizations/${org.id}/api-keys`,
      {
        key: owner.token,
        body: { name: "owner's", scopes: ["orgs:read"] },
      },
    );
    expectStatus(ownersKey, 201);
    for (const k of mine) {
      expectStatus(await t.request("GET", "/v1/organization", { key: k.key }), 200);
    }

    expectStatus(await removeMember(org.id, member.userId, owner.token), 204);

    for (const k of mine) {
      expectProblem(await t.request("GET", "/v1/organization", { key: k.key }), 401, "key_revoked");
      const shown = await t.request<{ status: string; revoked_at: string | null }>(
        "GET",
        `/v1/organizations/${org.id}/api-keys/${k.id}`,
      );
      expectStatus(shown, 200);
      expect(shown.body.status, shown.text).toBe("revoked");
    }
    expectStatus(await t.request("GET", "/v1/organization", { key: ownersKey.body.key }), 200);

    const revocations = await auditEvents(org.id, "api_key.revoked");
    expect(revocations.map((e) => e.target_id).sort()).toEqual(mine.map((k) => k.id).sort());
    expect(revocations[0]?.changes.reason).toEqual({ to: "creator_removed" });
  });

  it("leaves the member's keys in another organization alone", async () => {
    const a = await t.createOrg();
    const b = await t.createOrg();
    const inA = await t.createMember(a.id, "member");
    // The same person, a member of B as well.
    const now = new Date();
    await t.database.stores.memberships.insert({
      orgId: b.id,
      userId: inA.userId,
      role: "member",
      projectIds: null,
      invitedBy: null,
      createdAt: now,
      updatedAt: now,
    });
    const tokenForB = await t.identity.sign({ subject: inA.subject, orgId: b.id });
    const keyInB = await t.request<{ key: string }>("POST", `/v1/organizations/${b.id}/api-keys`, {
      key: tokenForB,
      body: { name: "b", scopes: ["orgs:read"] },
    });
    expectStatus(keyInB, 201);

    expectStatus(await removeMember(a.id, inA.userId), 204);
    expectStatus(await t.request("GET", "/v1/organization", { key: keyInB.body.key }), 200);
    expectStatus(await t.request("GET", "/v1/organization", { key: tokenForB }), 200);
  });

  it("does not let an admin remove an owner: 403 role_ceiling", async () => {
    const { org, owner, admin } = await team();
    expectProblem(await removeMember(org.id, owner.userId, admin.token), 403, "role_ceiling");
    expect(await roleOf(org.id, owner.userId)).toBe("owner");
  });

  it("does not let a viewer remove someone else: 403 insufficient_scope", async () => {
    const { org, viewer, member } = await team();
    expectProblem(await removeMember(org.id, member.userId, viewer.token), 403, "insufficient_scope");
    expect(await roleOf(org.id, member.userId)).toBe("member");
  });

  it("answers 404 for a member who is not there", async () => {
    const { org } = await team();
    expectProblem(await removeMember(org.id, "usr_01jd0v4n6qf9yb5c8h2m3k7x1z"), 404, "not_found");
    expectProblem(await removeMember(org.id, "nope"), 404, "not_found");
  });
});

describe("leaving an organization", () => {
  it("lets any member leave, even without members:write, and records it", async () => {
    const { org, viewer, billing } = await team();
    for (const person of [viewer, billing]) {
      expectStatus(await removeMember(org.id, person.userId, person.token), 204);
      expectProblem(await t.request("GET", "/v1/organization", { key: person.token }), 404, "not_found");
    }
    const events = await auditEvents(org.id, "member.left");
    expect(events.map((e) => [e.actor_id, e.target_id]).sort()).toEqual(
      [viewer, billing].map((p) => [p.userId, p.userId]).sort(),
    );
  });

  it("lets an owner leave when another owner remains", async () => {
    const { org, owner, admin } = await team();
    expectStatus(await setRole(org.id, admin.userId, "owner", owner.token), 200);
    expectStatus(await removeMember(org.id, owner.userId, owner.token), 204);
    expect(await roleOf(org.id, owner.userId)).toBeUndefined();
  });
});

describe("organizations created by signed-in users", () => {
  it("makes the creator the owner, in the same step", async () => {
    const person = await t.signIn();
    const res = await t.request<{ id: string; created_by: string }>("POST", "/v1/organizations", {
      key: person.token,
      body: { name: uniqueName("mine") },
    });
    expectStatus(res, 201);
    expect(res.body.created_by).toBe(person.userId);
    expect(await roleOf(res.body.id, person.userId)).toBe("owner");
    const [added] = await auditEvents(res.body.id, "member.added");
    expect(added).toMatchObject({
      actor_id: person.userId,
      target_id: person.userId,
      changes: { role: { to: "owner" } },
    });

    // The creator can run it at once, through /v1/organizations/{org_id}.
    const patch = await t.request("PATCH", `/v1/organizations/${res.body.id}`, {
      key: person.token,
      body: { display_name: "Mine" },
    });
    expectStatus(patch, 200);
  });

  it("lists to a signed-in user only the organizations they belong to; the operator sees them all", async () => {
    const person = await t.signIn();
    const created = await t.request<{ id: string }>("POST", "/v1/organizations", {
      key: person.token,
      body: { name: uniqueName("created") },
    });
    expectStatus(created, 201);
    const joined = await t.createOrg();
    const now = new Date();
    await t.database.stores.memberships.insert({
      orgId: joined.id,
      userId: person.userId,
      role: "viewer",
      projectIds: null,
      invitedBy: null,
      createdAt: now,
      updatedAt: now,
    });
    const stranger = await t.createOrg();

    const mine = await t.request<ListBody<{ id: string }>>("GET", "/v1/organizations?limit=100", {
      key: person.token,
    });
    expectStatus(mine, 200);
    expect(mine.body.data.map((o) => o.id).sort()).toEqual([created.body.id, joined.id].sort());

    const paged = await t.request<ListBody<{ id: string }>>("GET", "/v1/organizations?limit=1", {
      key: person.token,
    });
    expect(paged.body.data.map((o) => o.id)).toEqual([[created.body.id, joined.id].sort().reverse()[0]]);
    expect(paged.body.has_more).toBe(true);

    const all = await t.request<ListBody<{ id: string }>>("GET", "/v1/organizations?limit=100");
    expectStatus(all, 200);
    expect(all.body.data.map((o) => o.id)).toEqual(expect.arrayContaining([created.body.id, stranger.id]));

    const deleted = await t.request<ListBody<{ id: string }>>("GET", "/v1/organizations?status=deleted", {
      key: person.token,
    });
    expectStatus(deleted, 200);
    expect(deleted.body.data).toEqual([]);
  });

  it("does not let an organization key create or list organizations: 403 operator_only", async () => {
    const { key } = await t.createOrgWithKey();
    expectProblem(await t.request("GET", "/v1/organizations", { key }), 403, "operator_only");
    expectProblem(
      await t.request("POST", "/v1/organizations", { key, body: { name: uniqueName() } }),
      403,
      "operator_only",
    );
  });
});
