import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import { sha256Hex } from "../../src/lib/hash.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ListBody,
  type ManualClock,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";

type AuditEvent = {
  id: string;
  object: "audit_event";
  org_id: string;
  actor_type: "operator" | "api_key" | "system";
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  changes: Record<string, { from?: unknown; to?: unknown }>;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: string;
};
type Org = { id: string; slug: string };
type CreatedKey = { id: string; key: string };

let t: TestContext;
let clock: ManualClock;
let operatorId: string;
beforeAll(async () => {
  // Events are stamped by the service clock; a hand-moved clock makes time-range filters exact.
  clock = createManualClock(new Date("2030-01-01T00:00:00.000Z"));
  t = await createTestContext({ clock });
  operatorId = t.operatorCtx.principal.id;
});
afterAll(() => t.close());

async function listEvents(orgId: string, query = ""): Promise<AuditEvent[]> {
  const res = await t.request<ListBody<AuditEvent>>(
    "GET",
    `/v1/organizations/${orgId}/audit-events?limit=100${query}`,
  );
  expectStatus(res, 200);
  expect(res.body.has_more, res.text).toBe(false);
  return res.body.data;
}

async function countAllEvents(): Promise<number> {
  const { rows } = await t.database.pool.query<{ n: string }>("select count(*) as n from audit_events");
  return Number(rows[0]?.n);
}

function requestIdOf(res: TestResponse<unknown>): string {
  const id = res.headers.get("X-Request-Id");
  if (id === null) {
    throw new Error(`no X-Request-Id on ${res.status}: ${res.text}`);
  }
  return id;
}

describe("audit events", () => {
  it("records every mutation with actor, action, target, changes, user agent and request id", async () => {
    const ua = (step: string) => ({ "User-Agent": `audit-test/${step}` });
    const slug = uniqueName("audited");

    const created = await t.request<Org>("POST", "/v1/organizations", {
      body: { name: "Audited Inc", slug },
      headers: ua("create"),
    });
    expectStatus(created, 201);
    const orgId = created.body.id;

    const keyRes = await t.request<CreatedKey>("POST", `/v1/organizations/${orgId}/api-keys`, {
      body: { name: "auditor", scopes: ["orgs:read", "orgs:write", "audit:read"] },
      headers: ua("key-create"),
    });
    expectStatus(keyRes, 201);
    const orgKey = keyRes.body;

    const updated = await t.request("PATCH", "/v1/organization", {
      key: orgKey.key,
      body: { billing_email: "ap@audited.example", metadata: { tier: "gold" } },
      headers: ua("update"),
    });
    expectStatus(updated, 200);

    const suspended = await t.request("POST", `/v1/organizations/${orgId}/suspend`, {
      body: { reason: "fraud review" },
      headers: ua("suspend"),
    });
    expectStatus(suspended, 200);

    const unsuspended = await t.request("POST", `/v1/organizations/${orgId}/unsuspend`, {
      headers: ua("unsuspend"),
    });
    expectStatus(unsuspended, 200);

    const revoked = await t.request("DELETE", `/v1/organizations/${orgId}/api-keys/${orgKey.id}`, {
      headers: ua("key-revoke"),
    });
    expectStatus(revoked, 200);

    const deleted = await t.request("DELETE", `/v1/organizations/${orgId}`, { headers: ua("delete") });
    expectStatus(deleted, 200);

    // The operator still reads a deleted organization's trail; newest first.
    const events = await listEvents(orgId);
    expect(events.map((e) => e.action)).toEqual([
      "organization.deleted",
      "api_key.revoked",
      "organization.unsuspended",
      "organization.suspended",
      "organization.updated",
      "api_key.created",
      // The organization's subscription starts in the transaction that creates it.
      "subscription.created",
      "organization.created",
    ]);
    const [del, rev, unsus, sus, upd, keyCreate, _subCreate, orgCreate] = events;
    const expected: [AuditEvent | undefined, TestResponse<unknown>, string, Partial<AuditEvent>][] = [
      [
        orgCreate,
        created,
        "create",
        { actor_type: "operator", actor_id: operatorId, target_type: "organization", target_id: orgId },
      ],
      [
        keyCreate,
        keyRes,
        "key-create",
        { actor_type: "operator", actor_id: operatorId, target_type: "api_key", target_id: orgKey.id },
      ],
      [
        upd,
        updated,
        "update",
        { actor_type: "api_key", actor_id: orgKey.id, target_type: "organization", target_id: orgId },
      ],
      [
        sus,
        suspended,
        "suspend",
        { actor_type: "operator", actor_id: operatorId, target_type: "organization", target_id: orgId },
      ],
      [
        unsus,
        unsuspended,
        "unsuspend",
        { actor_type: "operator", actor_id: operatorId, target_type: "organization", target_id: orgId },
      ],
      [
        rev,
        revoked,
        "key-revoke",
        { actor_type: "operator", actor_id: operatorId, target_type: "api_key", target_id: orgKey.id },
      ],
      [
        del,
        deleted,
        "delete",
        { actor_type: "operator", actor_id: operatorId, target_type: "organization", target_id: orgId },
      ],
    ];
    for (const [event, res, step, fields] of expected) {
      expect(event, step).toMatchObject({
        ...fields,
        object: "audit_event",
        org_id: orgId,
        user_agent: `audit-test/${step}`,
        request_id: requestIdOf(res),
      });
      expect(event?.id, step).toMatch(/^aud_[0-9a-z]{26}$/);
    }

    expect(orgCreate?.changes).toMatchObject({ name: { to: "Audited Inc" }, slug: { to: slug } });
    expect(keyCreate?.changes).toMatchObject({
      name: { to: "auditor" },
      scopes: { to: ["audit:read", "orgs:read", "orgs:write"] },
      expires_at: { to: null },
    });
    // An update records only what changed, from and to.
    expect(upd?.changes).toEqual({
      billing_email: { from: null, to: "ap@audited.example" },
      metadata: { from: {}, to: { tier: "gold" } },
    });
    expect(sus?.changes).toEqual({
      status: { from: "active", to: "suspended" },
      suspended_reason: { from: null, to: "fraud review" },
    });
    expect(unsus?.changes).toEqual({
      status: { from: "suspended", to: "active" },
      suspended_reason: { from: "fraud review", to: null },
    });
    expect(rev?.changes).toEqual({ revoked_at: { from: null, to: expect.any(String) } });
    expect(del?.changes).toEqual({ status: { from: "active", to: "deleted" } });
  });

  it("records the client's address when served over a real socket", async () => {
    const server = serve({ fetch: t.app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve, reject) => {
      server.once("listening", resolve);
      server.once("error", reject);
    });
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/v1/organizations`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${t.operatorKey}`,
          "Content-Type": "application/json",
          "User-Agent": "socket-client/2.0",
          // Not trusted: the app is not behind a proxy here.
          "X-Forwarded-For": "198.51.100.7",
        },
        body: JSON.stringify({ name: uniqueName() }),
      });
      const body = (await res.json()) as Org;
      expect(res.status, JSON.stringify(body)).toBe(201);
      const [event] = await listEvents(body.id, "&action=organization.created");
      expect(event).toMatchObject({
        action: "organization.created",
        user_agent: "socket-client/2.0",
        request_id: res.headers.get("X-Request-Id"),
      });
      expect(event?.ip).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("keeps the request id a caller sent", async () => {
    const org = await t.createOrg();
    const res = await t.request("PATCH", `/v1/organizations/${org.id}`, {
      body: { name: "Traced" },
      headers: { "X-Request-Id": "trace-0042" },
    });
    expectStatus(res, 200);
    const [event] = await listEvents(org.id, "&action=organization.updated");
    expect(event?.request_id).toBe("trace-0042");
  });

  it("filters by action and by actor", async () => {
    const { org, key } = await t.createOrgWithKey();
    const keyId = (await t.request<{ key_id: string }>("GET", "/v1/me", { key })).body.key_id;
    expectStatus(await t.request("PATCH", "/v1/organization", { key, body: { name: "by key" } }), 200);
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}`, { body: { name: "by operator" } }),
      200,
    );
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`), 200);

    const updates = await listEvents(org.id, "&action=organization.updated");
    expect(updates.map((e) => [e.action, e.actor_id])).toEqual([
      ["organization.updated", operatorId],
      ["organization.updated", keyId],
    ]);

    const byKey = await listEvents(org.id, `&actor_id=${keyId}`);
    expect(byKey.map((e) => e.action)).toEqual(["organization.updated"]);

    const byOperator = await listEvents(org.id, `&actor_id=${operatorId}`);
    expect(byOperator.map((e) => e.action)).toEqual([
      "organization.suspended",
      "organization.updated",
      // t.createOrgWithKey acts as the operator too.
      "api_key.created",
      "subscription.created",
      "organization.created",
    ]);

    expect(await listEvents(org.id, "&action=organization.nothing")).toEqual([]);
  });

  it("filters by time range: since inclusive, until exclusive", async () => {
    const org = await t.createOrg();
    const at = (iso: string) => new Date(iso);
    const times = ["2031-03-01T10:00:00.000Z", "2031-03-01T11:00:00.000Z", "2031-03-01T12:00:00.000Z"];
    for (const [i, time] of times.entries()) {
      clock.set(at(time));
      expectStatus(await t.request("PATCH", `/v1/organizations/${org.id}`, { body: { name: `v${i}` } }), 200);
    }
    const names = (events: AuditEvent[]) => events.map((e) => e.changes.name?.to);
    const q = (params: Record<string, string>) =>
      `&action=organization.updated&${new URLSearchParams(params)}`;

    expect(names(await listEvents(org.id, q({ since: times[1] ?? "" })))).toEqual(["v2", "v1"]);
    expect(names(await listEvents(org.id, q({ until: times[1] ?? "" })))).toEqual(["v0"]);
    expect(names(await listEvents(org.id, q({ since: times[0] ?? "", until: times[2] ?? "" })))).toEqual([
      "v1",
      "v0",
    ]);
    expect(
      names(
        await listEvents(org.id, q({ since: "2031-03-01T10:30:00+00:00", until: "2031-03-01T11:30:00Z" })),
      ),
    ).toEqual(["v1"]);
    for (const event of await listEvents(org.id, q({ since: times[0] ?? "" }))) {
      expect(times).toContain(event.created_at);
    }

    const bad = await t.request<ProblemBody>(
      "GET",
      `/v1/organizations/${org.id}/audit-events?since=yesterday`,
    );
    expectStatus(bad, 400);
    expect(bad.body.errors?.[0]?.path, bad.text).toBe("query.since");
  });

  it("pages with limit and cursor, newest first", async () => {
    const org = await t.createOrg();
    for (let i = 0; i < 6; i++) {
      expectStatus(await t.request("PATCH", `/v1/organizations/${org.id}`, { body: { name: `n${i}` } }), 200);
    }
    const all = await listEvents(org.id);
    // Six updates, the creation and the subscription it starts.
    expect(all).toHaveLength(8);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "" : `&cursor=${cursor}`;
      const page = await t.request<ListBody<AuditEvent>>(
        "GET",
        `/v1/organizations/${org.id}/audit-events?limit=3${query}`,
      );
      expectStatus(page, 200);
      pages++;
      seen.push(...page.body.data.map((e) => e.id));
      cursor = page.body.next_cursor;
      expect(page.body.has_more).toBe(cursor !== null);
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(all.map((e) => e.id));
    expect(seen).toEqual([...seen].sort().reverse());

    const bad = await t.request<ProblemBody>("GET", `/v1/organizations/${org.id}/audit-events?cursor=xyz`);
    expectStatus(bad, 400);
    expect(bad.body.code, bad.text).toBe("invalid_cursor");
  });

  it("never holds a secret: no plaintext key and no key hash in any event", async () => {
    const org = await t.createOrg();
    const secrets: string[] = [];
    for (const environment of ["live", "test"]) {
      const res = await t.request<CreatedKey>("POST", `/v1/organizations/${org.id}/api-keys`, {
        body: { name: `secret-${environment}`, environment },
      });
      expectStatus(res, 201);
      secrets.push(res.body.key, res.body.key.slice(8, 40), sha256Hex(res.body.key));
      expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${res.body.id}`), 200);
    }
    const events = await t.request<ListBody<AuditEvent>>("GET", `/v1/organizations/${org.id}/audit-events`);
    expectStatus(events, 200);
    expect(events.body.data.length).toBeGreaterThanOrEqual(5);

    // Every row, every column, as PostgreSQL stores it.
    const { rows } = await t.database.pool.query<{ row: string }>(
      "select a::text as row from audit_events a",
    );
    for (const secret of secrets) {
      expect(events.text).not.toContain(secret);
      expect(rows.filter((r) => r.row.includes(secret))).toEqual([]);
    }
  });

  it("writes no event for a mutation that fails or changes nothing", async () => {
    const { org, key } = await t.createOrgWithKey();
    const taken = await t.createOrg();
    const readOnly = await t.createKey(org.id, ["orgs:read"]);
    const before = await countAllEvents();

    const failures: [string, string, unknown, number, string | undefined][] = [
      ["POST", "/v1/organizations", { name: "dup", slug: taken.slug }, 409, undefined],
      ["PATCH", `/v1/organizations/${org.id}`, { slug: taken.slug }, 409, undefined],
      ["PATCH", `/v1/organizations/${org.id}`, { billing_email: "nope" }, 400, undefined],
      ["PATCH", `/v1/organizations/${org.id}`, { name: "no scope" }, 403, readOnly],
      ["POST", `/v1/organizations/${org.id}/unsuspend`, undefined, 409, undefined],
      [
        "POST",
        `/v1/organizations/${org.id}/api-keys`,
        { name: "late", expires_at: "2000-01-01T00:00:00Z" },
        400,
        undefined,
      ],
      [
        "POST",
        `/v1/organizations/${org.id}/api-keys`,
        { name: "up", scopes: ["orgs:delete"] },
        403,
        readOnly,
      ],
      [
        "DELETE",
        `/v1/organizations/${org.id}/api-keys/key_01jd0v4n6qf9yb5c8h2m3k7x1z`,
        undefined,
        404,
        undefined,
      ],
      ["DELETE", `/v1/organizations/${taken.id}`, undefined, 404, key],
      // Changes nothing: same name as now.
      ["PATCH", `/v1/organizations/${org.id}`, { name: org.name }, 200, undefined],
    ];
    for (const [method, path, body, status, as] of failures) {
      const res = await t.request(method, path, { body, key: as ?? t.operatorKey });
      expectStatus(res, status);
    }
    expect(await countAllEvents()).toBe(before);

    // A failed suspend after a successful one leaves exactly one suspension in the trail.
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`), 200);
    expectStatus(await t.request("POST", `/v1/organizations/${org.id}/suspend`), 409);
    expect(await listEvents(org.id, "&action=organization.suspended")).toHaveLength(1);
    expect(await countAllEvents()).toBe(before + 1);
  });

  it("shows an org key its own trail only, and needs audit:read", async () => {
    const { org, key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    const own = await t.request<ListBody<AuditEvent>>("GET", `/v1/organizations/${org.id}/audit-events`, {
      key,
    });
    expectStatus(own, 200);
    expect(own.body.data.every((e) => e.org_id === org.id)).toBe(true);

    const foreign = await t.request<ProblemBody>("GET", `/v1/organizations/${other.id}/audit-events`, {
      key,
    });
    expectStatus(foreign, 404);

    const noScope = await t.createKey(org.id, ["orgs:read"]);
    const refused = await t.request<ProblemBody>("GET", `/v1/organizations/${org.id}/audit-events`, {
      key: noScope,
    });
    expectStatus(refused, 403);
    expect(refused.body.code, refused.text).toBe("insufficient_scope");
  });
});
