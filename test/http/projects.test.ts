import type { z } from "@hono/zod-openapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import type { CreatedApiKeySchema } from "../../src/http/schemas/api-key.ts";
import type { ProjectSchema } from "../../src/http/schemas/project.ts";
import { createTestContext, expectStatus, type ListBody, type TestContext } from "../harness.ts";

type Project = z.infer<typeof ProjectSchema>;
type CreatedApiKey = z.infer<typeof CreatedApiKeySchema>;
type AuditEvent = {
  action: string;
  target_id: string;
  changes: Record<string, { from?: unknown; to?: unknown }>;
};

let t: TestContext;
beforeAll(async () => {
  t = await createTestContext();
});
afterAll(() => t.close());

const projectsPath = (orgId: string) => `/v1/organizations/${orgId}/projects`;

async function createProject(orgId: string, body: Record<string, unknown>, key?: string): Promise<Project> {
  const res = await t.request<Project>("POST", projectsPath(orgId), {
    body,
    ...(key === undefined ? {} : { key }),
  });
  expectStatus(res, 201);
  return res.body;
}

async function auditOf(orgId: string, targetId: string): Promise<AuditEvent[]> {
  const res = await t.request<ListBody<AuditEvent>>(
    "GET",
    `/v1/organizations/${orgId}/audit-events?limit=100`,
  );
  expectStatus(res, 200);
  return res.body.data.filter((e) => e.target_id === targetId).reverse();
}

describe("creating a project", () => {
  it("generates the slug from the name, starts active, and records who created it", async () => {
    const org = await t.createOrg();
    const project = await createProject(org.id, { name: "  Search Backend Ünïcode " });
    expect(project).toMatchObject({
      object: "project",
      org_id: org.id,
      name: "Search Backend Ünïcode",
      slug: "search-backend-unicode",
      state: "active",
      metadata: {},
      created_by: t.operatorCtx.principal.id,
      deleted_at: null,
    });
    expect(project.id).toMatch(/^prj_/);
  });

  it("takes every field, and answers 409 slug_taken for a live project's slug in the same org only", async () => {
    const org = await t.createOrg();
    const other = await t.createOrg();
    const body = { name: "Docs", slug: "docs", state: "archived", metadata: { tier: "gold", n: 3 } };
    const project = await createProject(org.id, body);
    expect(project).toMatchObject(body);
    const taken = await t.request<ProblemBody>("POST", projectsPath(org.id), {
      body: { name: "x", slug: "docs" },
    });
    expectStatus(taken, 409);
    expect(taken.body.code).toBe("slug_taken");
    await createProject(other.id, { name: "Docs", slug: "docs" });
    // A generated slug that collides gets a suffix instead.
    const second = await createProject(org.id, { name: "Docs" });
    expect(second.slug).toMatch(/^docs-[0-9a-z]{6}$/);
  });

  it("refuses unknown fields, bad slugs and oversized metadata with 400", async () => {
    const org = await t.createOrg();
    for (const body of [
      { name: "x", color: "red" },
      { name: "x", slug: "Not A Slug!" },
      { name: "" },
      { name: "x", state: "paused" },
      { name: "x", metadata: { big: "y".repeat(20_000) } },
    ]) {
      const res = await t.request<ProblemBody>("POST", projectsPath(org.id), { body });
      expectStatus(res, 400);
      expect(res.body.code).toBe("validation_failed");
    }
  });

  it("writes a project.created audit event", async () => {
    const org = await t.createOrg();
    const project = await createProject(org.id, { name: "Audited" });
    const events = await auditOf(org.id, project.id);
    expect(events.map((e) => e.action)).toEqual(["project.created"]);
    expect(events[0]?.changes.slug).toEqual({ to: "audited" });
  });
});

describe("reading, changing and deleting a project", () => {
  it("lists newest first with pagination, and filters by state", async () => {
    const org = await t.createOrg();
    const a = await createProject(org.id, { name: "A" });
    const b = await createProject(org.id, { name: "B", state: "archived" });
    const c = await createProject(org.id, { name: "C" });
    const page1 = await t.request<ListBody<Project>>("GET", `${projectsPath(org.id)}?limit=2`);
    expectStatus(page1, 200);
    expect(page1.body.data.map((p) => p.id)).toEqual([c.id, b.id]);
    expect(page1.body.has_more).toBe(true);
    const page2 = await t.request<ListBody<Project>>(
      "GET",
      `${projectsPath(org.id)}?limit=2&cursor=${page1.body.next_cursor}`,
    );
    expect(page2.body.data.map((p) => p.id)).toEqual([a.id]);
    const archived = await t.request<ListBody<Project>>("GET", `${projectsPath(org.id)}?state=archived`);
    expect(archived.body.data.map((p) => p.id)).toEqual([b.id]);
  });

  it("PATCH changes name, slug and state, replaces metadata whole, and audits the difference", async () => {
    const org = await t.createOrg();
    const project = await createProject(org.id, { name: "Old", metadata: { a: 1, b: 2 } });
    const res = await t.request<Project>("PATCH", `${projectsPath(org.id)}/${project.id}`, {
      body: { name: "New", slug: "new-slug", state: "archived", metadata: { c: 3 } },
    });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ name: "New", slug: "new-slug", state: "archived", metadata: { c: 3 } });
    const events = await auditOf(org.id, project.id);
    expect(events.map((e) => e.action)).toEqual(["project.created", "project.updated"]);
    expect(events[1]?.changes).toEqual({
      name: { from: "Old", to: "New" },
      slug: { from: "old", to: "new-slug" },
      state: { from: "active", to: "archived" },
      metadata: { from: { a: 1, b: 2 }, to: { c: 3 } },
    });
  });

  it("PATCH to another live project's slug is 409 slug_taken", async () => {
    const org = await t.createOrg();
    await createProject(org.id, { name: "One", slug: "one" });
    const two = await createProject(org.id, { name: "Two", slug: "two" });
    const res = await t.request<ProblemBody>("PATCH", `${projectsPath(org.id)}/${two.id}`, {
      body: { slug: "one" },
    });
    expectStatus(res, 409);
    expect(res.body.code).toBe("slug_taken");
  });

  it("DELETE is soft: the project is gone from reads, its slug is free, and it is audited", async () => {
    const org = await t.createOrg();
    const project = await createProject(org.id, { name: "Doomed", slug: "doomed" });
    const del = await t.request<Project>("DELETE", `${projectsPath(org.id)}/${project.id}`);
    expectStatus(del, 200);
    expect(del.body.deleted_at).not.toBeNull();
    expectStatus(await t.request("GET", `${projectsPath(org.id)}/${project.id}`), 404);
    expectStatus(
      await t.request("PATCH", `${projectsPath(org.id)}/${project.id}`, { body: { name: "x" } }),
      404,
    );
    expectStatus(await t.request("DELETE", `${projectsPath(org.id)}/${project.id}`), 404);
    const list = await t.request<ListBody<Project>>("GET", projectsPath(org.id));
    expect(list.body.data).toEqual([]);
    await createProject(org.id, { name: "Reborn", slug: "doomed" });
    const { rows } = await t.database.pool.query<{ deleted_at: Date | null }>(
      "select deleted_at from projects where id = $1",
      [project.id],
    );
    expect(rows[0]?.deleted_at, "the row stays").toBeInstanceOf(Date);
    const events = await auditOf(org.id, project.id);
    expect(events.map((e) => e.action)).toEqual(["project.created", "project.deleted"]);
  });

  it("stops the keys of a deleted project at once", async () => {
    const org = await t.createOrg();
    const project = await createProject(org.id, { name: "Keyed" });
    const created = await t.request<CreatedApiKey>("POST", `/v1/organizations/${org.id}/api-keys`, {
      body: { name: "project key", project_id: project.id },
    });
    expectStatus(created, 201);
    const key = created.body.key;
    expectStatus(await t.request("GET", `${projectsPath(org.id)}/${project.id}`, { key }), 200);
    expectStatus(await t.request("DELETE", `${projectsPath(org.id)}/${project.id}`), 200);
    const refused = await t.request<ProblemBody>("GET", "/v1/me", { key });
    expectStatus(refused, 401);
    expect(refused.body.code).toBe("invalid_credential");
  });

  it("answers 404 for another organization's project, even to the operator, and for ids of the wrong shape", async () => {
    const org = await t.createOrg();
    const other = await t.createOrg();
    const project = await createProject(other.id, { name: "Theirs" });
    for (const id of [project.id, "nope", "prj_123"]) {
      const res = await t.request<ProblemBody>("GET", `${projectsPath(org.id)}/${id}`);
      expectStatus(res, 404);
      expect(res.body.detail).toContain(id);
    }
    expectStatus(
      await t.request("PATCH", `${projectsPath(org.id)}/${project.id}`, { body: { name: "x" } }),
      404,
    );
    expectStatus(await t.request("DELETE", `${projectsPath(org.id)}/${project.id}`), 404);
  });
});

describe("who sees which projects", () => {
  it("needs projects:read to read and projects:write to change", async () => {
    const org = await t.createOrg();
    const project = await createProject(org.id, { name: "P" });
    const reader = await t.createKey(org.id, ["projects:read"]);
    expectStatus(await t.request("GET", projectsPath(org.id), { key: reader }), 200);
    for (const [method, path, body] of [
      ["POST", projectsPath(org.id), { name: "x" }],
      ["PATCH", `${projectsPath(org.id)}/${project.id}`, { name: "x" }],
      ["DELETE", `${projectsPath(org.id)}/${project.id}`, undefined],
    ] as const) {
      const res = await t.request<ProblemBody>(method, path, { key: reader, body });
      expectStatus(res, 403);
      expect(res.body.code).toBe("insufficient_scope");
    }
    const none = await t.createKey(org.id, ["orgs:read"]);
    expectStatus(await t.request("GET", projectsPath(org.id), { key: none }), 403);
  });

  it("shows a project key its own project only: the list holds just it, another id is 404", async () => {
    const org = await t.createOrg();
    const mine = await createProject(org.id, { name: "Mine" });
    const theirs = await createProject(org.id, { name: "Theirs" });
    const created = await t.request<CreatedApiKey>("POST", `/v1/organizations/${org.id}/api-keys`, {
      body: { name: "confined", project_id: mine.id },
    });
    expectStatus(created, 201);
    const key = created.body.key;
    const list = await t.request<ListBody<Project>>("GET", projectsPath(org.id), { key });
    expectStatus(list, 200);
    expect(list.body.data.map((p) => p.id)).toEqual([mine.id]);
    expectStatus(await t.request("GET", `${projectsPath(org.id)}/${mine.id}`, { key }), 200);
    const other = await t.request<ProblemBody>("GET", `${projectsPath(org.id)}/${theirs.id}`, { key });
    expectStatus(other, 404);
    expect(other.body.code).toBe("not_found");
  });

  it("shows a member restricted to some projects only those", async () => {
    const org = await t.createOrg();
    const allowed = await createProject(org.id, { name: "Allowed" });
    const hidden = await createProject(org.id, { name: "Hidden" });
    const member = await t.createMember(org.id, "member");
    await t.database.pool.query(
      "update memberships set project_ids = $1 where org_id = $2 and user_id = $3",
      [[allowed.id], org.id, member.userId],
    );
    const list = await t.request<ListBody<Project>>("GET", projectsPath(org.id), { key: member.token });
    expectStatus(list, 200);
    expect(list.body.data.map((p) => p.id)).toEqual([allowed.id]);
    expectStatus(await t.request("GET", `${projectsPath(org.id)}/${hidden.id}`, { key: member.token }), 404);
    expectStatus(
      await t.request("PATCH", `${projectsPath(org.id)}/${hidden.id}`, {
        key: member.token,
        body: { name: "x" },
      }),
      404,
    );
    const patched = await t.request<Project>("PATCH", `${projectsPath(org.id)}/${allowed.id}`, {
      key: member.token,
      body: { name: "Renamed" },
    });
    expectStatus(patched, 200);
    const create = await t.request<ProblemBody>("POST", projectsPath(org.id), {
      key: member.token,
      body: { name: "New" },
    });
    expectStatus(create, 403);
    expect(create.body.code).toBe("forbidden");

    const unrestricted = await t.createMember(org.id, "member");
    const all = await t.request<ListBody<Project>>("GET", projectsPath(org.id), { key: unrestricted.token });
    expect(all.body.data.map((p) => p.id).sort()).toEqual([allowed.id, hidden.id].sort());
  });
});
