import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { z } from "@hono/zod-openapi";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ProblemBody } from "../../src/http/problem.ts";
import type {
  WebhookDeliverySchema,
  WebhookEndpointSchema,
  WebhookEndpointWithSecretSchema,
} from "../../src/http/schemas/webhook.ts";
import {
  createTestContext,
  expectStatus,
  type ListBody,
  type TestContext,
  type TestResponse,
} from "../harness.ts";

type Endpoint = z.infer<typeof WebhookEndpointSchema>;
type EndpointWithSecret = z.infer<typeof WebhookEndpointWithSecretSchema>;
type Delivery = z.infer<typeof WebhookDeliverySchema>;
type Envelope = {
  id: string;
  type: string;
  created_at: string;
  sequence: number;
  data: Record<string, unknown>;
};

/** One request as the local receiver saw it: the raw body is what the signatures cover. */
type Received = { headers: IncomingHttpHeaders; body: string };

/**
 * A webhook receiver on 127.0.0.1 (the harness's services may deliver to loopback): it records every
 * request and answers `status`.
 */
type Receiver = { url: string; received: Received[]; status: number; close(): Promise<void> };

async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: "",
    received,
    status: 200,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      res.writeHead(receiver.status, { "Content-Type": "text/plain" });
      res.end(receiver.status < 300 ? "ok" : "receiver says no");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return receiver;
}

/** The three Standard Webhooks headers of a received request, as `Webhook.verify` takes them. */
function signedHeaders(r: Received): Record<string, string> {
  const pick = (name: string) => {
    const value = r.headers[name];
    if (typeof value !== "string") {
      throw new Error(`the delivery has no ${name} header`);
    }
    return value;
  };
  return {
    "webhook-id": pick("webhook-id"),
    "webhook-timestamp": pick("webhook-timestamp"),
    "webhook-signature": pick("webhook-signature"),
  };
}

/** Verify with the `standardwebhooks` package (an implementation independent of Orgplane's). */
function verifyWith(secret: string, r: Received): Envelope {
  return new Webhook(secret).verify(r.body, signedHeaders(r)) as Envelope;
}

/** The request once per signature in its header, with that signature alone. */
function eachSignatureAlone(r: Received): Received[] {
  return (signedHeaders(r)["webhook-signature"] ?? "").split(" ").map((signature) => ({
    body: r.body,
    headers: { ...r.headers, "webhook-signature": signature },
  }));
}

let t: TestContext;
let receiver: Receiver;
beforeAll(async () => {
  t = await createTestContext();
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
  await t.close();
});
beforeEach(() => {
  receiver.status = 200;
});

function endpointsPath(orgId: string): string {
  return `/v1/organizations/${orgId}/webhook-endpoints`;
}

/** An endpoint pointing at the receiver, created by the operator. */
async function createEndpoint(
  orgId: string,
  body: Record<string, unknown> = {},
): Promise<EndpointWithSecret> {
  const res = await t.request<EndpointWithSecret>("POST", endpointsPath(orgId), {
    body: { url: receiver.url, ...body },
  });
  expectStatus(res, 201);
  // The harness checks at close that no tracked secret was ever logged.
  t.trackSecret(res.body.secret);
  return res.body;
}

async function getEndpoint(orgId: string, id: string): Promise<TestResponse<Endpoint>> {
  return t.request<Endpoint>("GET", `${endpointsPath(orgId)}/${id}`);
}

async function listEndpoints(orgId: string): Promise<ListBody<Endpoint>> {
  const res = await t.request<ListBody<Endpoint>>("GET", `${endpointsPath(orgId)}?limit=100`);
  expectStatus(res, 200);
  return res.body;
}

async function sendTest(orgId: string, endpointId: string): Promise<Delivery> {
  const res = await t.request<Delivery>("POST", `${endpointsPath(orgId)}/${endpointId}/test`);
  expectStatus(res, 200);
  return res.body;
}

async function listDeliveries(orgId: string, endpointId: string, query = ""): Promise<Delivery[]> {
  const res = await t.request<ListBody<Delivery>>(
    "GET",
    `${endpointsPath(orgId)}/${endpointId}/deliveries?limit=100${query}`,
  );
  expectStatus(res, 200);
  return res.body.data;
}

/** The requests the receiver got for one event (its `webhook-id`). */
function receivedFor(eventId: string): Received[] {
  return receiver.received.filter((r) => r.headers["webhook-id"] === eventId);
}

function expectValidationError(res: TestResponse<ProblemBody>, path: string): void {
  expectStatus(res, 400);
  expect(res.headers.get("content-type"), res.text).toMatch(/^application\/problem\+json/);
  expect(res.body.code, res.text).toBe("validation_failed");
  expect(
    res.body.errors?.map((e) => e.path),
    res.text,
  ).toContain(path);
}

describe("creating a webhook endpoint", () => {
  it("answers the endpoint with its whsec_ secret, once", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id, {
      description: "billing events",
      event_types: ["invoice.paid", "credits.low"],
    });
    expect(created).toMatchObject({
      object: "webhook_endpoint",
      org_id: org.id,
      url: receiver.url,
      description: "billing events",
      // A set: answered sorted.
      event_types: ["credits.low", "invoice.paid"],
      is_active: true,
      disabled_at: null,
      disabled_reason: null,
      failing_since: null,
      secret_rotated_until: null,
    });
    expect(created.id).toMatch(/^whe_[0-9a-z]{26}$/);
    // Standard Webhooks: whsec_ and the base64 of the key (32 random bytes).
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(created.secret.slice("whsec_".length), "base64")).toHaveLength(32);

    const read = await getEndpoint(org.id, created.id);
    expectStatus(read, 200);
    const { secret, ...shown } = created;
    expect(read.body).toEqual(shown);
    expect(read.text).not.toContain(secret);
    expect(Object.keys(read.body)).not.toContain("secret");
  });

  it("defaults to every event type, active, without a description", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    expect(created).toMatchObject({ event_types: [], is_active: true, description: null });
  });

  it("gives every endpoint a secret of its own", async () => {
    const org = await t.createOrg();
    const a = await createEndpoint(org.id);
    const b = await createEndpoint(org.id);
    expect(a.secret).not.toBe(b.secret);
  });

  it("never shows the secret again: not in list, update, delete or the audit trail", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const list = await t.request("GET", endpointsPath(org.id));
    const update = await t.request("PATCH", `${endpointsPath(org.id)}/${created.id}`, {
      body: { description: "renamed", is_active: false },
    });
    const rotated = await t.request<EndpointWithSecret>(
      "POST",
      `${endpointsPath(org.id)}/${created.id}/rotate-secret`,
      { body: { expire_previous_in_seconds: 60 } },
    );
    expectStatus(rotated, 200);
    t.trackSecret(rotated.body.secret);
    const audit = await t.request("GET", `/v1/organizations/${org.id}/audit-events?limit=100`);
    const deleted = await t.request("DELETE", `${endpointsPath(org.id)}/${created.id}`);
    const auditAfter = await t.request("GET", `/v1/organizations/${org.id}/audit-events?limit=100`);
    for (const res of [list, update, audit, deleted, auditAfter]) {
      expect(res.status, res.text).toBeLessThan(300);
      for (const secret of [created.secret, rotated.body.secret]) {
        expect(res.text).not.toContain(secret);
        expect(res.text).not.toContain(secret.slice("whsec_".length));
      }
    }
    // The trail does record each change, only never the secret.
    for (const action of ["created", "updated", "secret_rotated"]) {
      expect(audit.text).toContain(`"webhook_endpoint.${action}"`);
    }
    expect(auditAfter.text).toContain('"webhook_endpoint.deleted"');
    // The rotation's answer carries the new secret, never the previous one.
    expect(rotated.text).not.toContain(created.secret);
    expect(list.text).not.toContain('"secret"');
    expect(update.text).not.toContain('"secret"');
  });

  it("replays the first answer to a retry with the same Idempotency-Key, creating one endpoint", async () => {
    const org = await t.createOrg();
    const send = () =>
      t.request<EndpointWithSecret>("POST", endpointsPath(org.id), {
        body: { url: receiver.url },
        headers: { "Idempotency-Key": "create-endpoint-once" },
      });
    const first = await send();
    expectStatus(first, 201);
    t.trackSecret(first.body.secret);
    const again = await send();
    expectStatus(again, 201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.id).toBe(first.body.id);
    expect((await listEndpoints(org.id)).data.map((e) => e.id)).toEqual([first.body.id]);
  });
});

describe("listing, updating and deleting webhook endpoints", () => {
  it("lists newest first and pages with limit and cursor", async () => {
    const org = await t.createOrg();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createEndpoint(org.id, { description: `endpoint ${i}` })).id);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? "" : `&cursor=${cursor}`;
      const page = await t.request<ListBody<Endpoint>>("GET", `${endpointsPath(org.id)}?limit=2${query}`);
      expectStatus(page, 200);
      expect(page.body.data.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.data.map((e) => e.id));
      cursor = page.body.next_cursor;
      expect(page.body.has_more).toBe(cursor !== null);
    } while (cursor !== null && seen.length <= ids.length);
    expect(seen).toEqual([...ids].reverse());

    const bad = await t.request<ProblemBody>("GET", `${endpointsPath(org.id)}?cursor=nope`);
    expectStatus(bad, 400);
    expect(bad.body.code, bad.text).toBe("invalid_cursor");
  });

  it("changes only the fields sent", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id, { description: "first", event_types: ["member.added"] });
    const res = await t.request<Endpoint>("PATCH", `${endpointsPath(org.id)}/${created.id}`, {
      body: { event_types: ["member.removed", "member.added"] },
    });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      url: receiver.url,
      description: "first",
      event_types: ["member.added", "member.removed"],
      is_active: true,
    });

    const paused = await t.request<Endpoint>("PATCH", `${endpointsPath(org.id)}/${created.id}`, {
      body: { is_active: false, description: null, event_types: [] },
    });
    expectStatus(paused, 200);
    expect(paused.body).toMatchObject({ is_active: false, description: null, event_types: [] });
    expect((await getEndpoint(org.id, created.id)).body).toEqual(paused.body);

    const moved = `${receiver.url}/moved`;
    const relocated = await t.request<Endpoint>("PATCH", `${endpointsPath(org.id)}/${created.id}`, {
      body: { url: moved, is_active: true },
    });
    expectStatus(relocated, 200);
    expect(relocated.body).toMatchObject({ url: moved, is_active: true });
  });

  it("deletes with 204: the endpoint is gone from get and list", async () => {
    const org = await t.createOrg();
    const kept = await createEndpoint(org.id);
    const gone = await createEndpoint(org.id);
    const res = await t.request("DELETE", `${endpointsPath(org.id)}/${gone.id}`);
    expectStatus(res, 204);
    expect(res.text).toBe("");
    const read = await getEndpoint(org.id, gone.id);
    expectStatus(read, 404);
    expect((await listEndpoints(org.id)).data.map((e) => e.id)).toEqual([kept.id]);
    expectStatus(await t.request("DELETE", `${endpointsPath(org.id)}/${gone.id}`), 404);
  });
});

describe("refusing bad input with 400 validation_failed, changing nothing", () => {
  /** Valid on its own (the harness's services accept any http(s) URL); each case breaks one thing. */
  const url = "https://example.com/hooks";
  const badCreates: [string, Record<string, unknown>, string][] = [
    ["no url", {}, "url"],
    ["an empty url", { url: "" }, "url"],
    ["a url that is not one", { url: "not a url" }, "url"],
    ["a relative url", { url: "/hooks" }, "url"],
    ["an ftp url", { url: "ftp://example.com/hooks" }, "url"],
    ["a url with credentials", { url: "https://user:secret@example.com/hooks" }, "url"],
    ["a url over 2,048 characters", { url: `${url}/${"a".repeat(2048)}` }, "url"],
    ["a url that is a number", { url: 42 }, "url"],
    ["an unknown event type", { url, event_types: ["member.added", "member.exploded"] }, "event_types.1"],
    [
      "an event type twice",
      { url, event_types: ["invoice.paid", "credits.low", "invoice.paid"] },
      "event_types.2",
    ],
    ["event_types that is not a list", { url, event_types: "invoice.paid" }, "event_types"],
    ["a description over 1,024 characters", { url, description: "d".repeat(1025) }, "description"],
    ["a description with a NUL", { url, description: "a\u0000b" }, "description"],
    ["is_active that is not a boolean", { url, is_active: "yes" }, "is_active"],
    ["an unknown field", { url, secret: "whsec_mine" }, ""],
  ];

  it.each(badCreates)("create with %s", async (_label, body, path) => {
    const org = await t.createOrg();
    const res = await t.request<ProblemBody>("POST", endpointsPath(org.id), { body });
    expectValidationError(res, path);
    expect((await listEndpoints(org.id)).data).toEqual([]);
  });

  const badUpdates: [string, Record<string, unknown>, string][] = [
    ["a url that is not one", { url: "not a url" }, "url"],
    ["a url with credentials", { url: "https://user:secret@example.com/hooks" }, "url"],
    ["a null url", { url: null }, "url"],
    ["an unknown event type", { event_types: ["nope"] }, "event_types.0"],
    ["an event type twice", { event_types: ["member.added", "member.added"] }, "event_types.1"],
    ["a description over 1,024 characters", { description: "d".repeat(1025) }, "description"],
    ["is_active null", { is_active: null }, "is_active"],
  ];

  it.each(badUpdates)("update with %s", async (_label, body, path) => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id, { description: "before", event_types: ["invoice.paid"] });
    const before = await getEndpoint(org.id, created.id);
    const res = await t.request<ProblemBody>("PATCH", `${endpointsPath(org.id)}/${created.id}`, { body });
    expectValidationError(res, path);
    expect((await getEndpoint(org.id, created.id)).body).toEqual(before.body);
  });

  it.each([
    ["negative", -1],
    ["over 7 days", 604_801],
    ["fractional", 1.5],
    ["a string", "60"],
    ["null", null],
  ])("rotate-secret with expire_previous_in_seconds %s", async (_label, value) => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const before = await getEndpoint(org.id, created.id);
    const res = await t.request<ProblemBody>("POST", `${endpointsPath(org.id)}/${created.id}/rotate-secret`, {
      body: { expire_previous_in_seconds: value },
    });
    expectValidationError(res, "expire_previous_in_seconds");
    expect((await getEndpoint(org.id, created.id)).body).toEqual(before.body);
    // The old secret still signs alone: a refused rotation did not rotate.
    const delivery = await sendTest(org.id, created.id);
    const [got] = receivedFor(delivery.event_id);
    if (got === undefined) {
      throw new Error("the test event never reached the receiver");
    }
    expect(signedHeaders(got)["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(() => verifyWith(created.secret, got)).not.toThrow();
  });

  it("refuses a state filter that is not one", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const res = await t.request<ProblemBody>(
      "GET",
      `${endpointsPath(org.id)}/${created.id}/deliveries?state=lost`,
    );
    expectValidationError(res, "query.state");
  });
});

describe("other organizations and missing scopes", () => {
  it("answers another organization's endpoint and delivery with 404 on every route", async () => {
    const mine = await t.createOrgWithKey();
    const other = await t.createOrg();
    const theirs = await createEndpoint(other.id);
    const theirDelivery = await sendTest(other.id, theirs.id);
    const own = await createEndpoint(mine.org.id);
    const received = receiver.received.length;

    const base = endpointsPath(mine.org.id);
    const requests: [string, string, unknown?][] = [
      ["GET", `${base}/${theirs.id}`],
      ["PATCH", `${base}/${theirs.id}`, { description: "mine now" }],
      ["DELETE", `${base}/${theirs.id}`],
      ["POST", `${base}/${theirs.id}/rotate-secret`, {}],
      ["POST", `${base}/${theirs.id}/test`],
      ["GET", `${base}/${theirs.id}/deliveries`],
      ["GET", `${base}/${theirs.id}/deliveries/${theirDelivery.id}`],
      ["POST", `${base}/${theirs.id}/deliveries/${theirDelivery.id}/redeliver`],
      // Their delivery under my own endpoint is not mine either.
      ["GET", `${base}/${own.id}/deliveries/${theirDelivery.id}`],
      ["POST", `${base}/${own.id}/deliveries/${theirDelivery.id}/redeliver`],
      // Their organization's path with my key.
      ["GET", `${endpointsPath(other.id)}/${theirs.id}`],
      ["GET", endpointsPath(other.id)],
    ];
    for (const [method, path, body] of requests) {
      const res = await t.request<ProblemBody>(method, path, {
        key: mine.key,
        ...(body === undefined ? {} : { body }),
      });
      expectStatus(res, 404);
      expect(res.body.code, res.text).toBe("not_found");
      expect(res.text).not.toContain(theirs.url);
    }
    // Nothing of theirs changed and nothing was sent for them.
    const after = await getEndpoint(other.id, theirs.id);
    const { secret: _secret, ...shown } = theirs;
    expect(after.body).toEqual(shown);
    expect(receiver.received.length).toBe(received);
    const [delivery] = await listDeliveries(other.id, theirs.id);
    expect(delivery?.attempts).toBe(1);
  });

  it("answers a delivery of another endpoint of the same organization with 404", async () => {
    const org = await t.createOrg();
    const a = await createEndpoint(org.id);
    const b = await createEndpoint(org.id);
    const delivery = await sendTest(org.id, a.id);
    const res = await t.request<ProblemBody>(
      "GET",
      `${endpointsPath(org.id)}/${b.id}/deliveries/${delivery.id}`,
    );
    expectStatus(res, 404);
  });

  it("lets owners and admins in; refuses members, viewers and billing with 403 insufficient_scope", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    for (const role of ["owner", "admin"] as const) {
      const { token } = await t.createMember(org.id, role);
      expectStatus(await t.request("GET", endpointsPath(org.id), { key: token }), 200);
      const made = await t.request<EndpointWithSecret>("POST", endpointsPath(org.id), {
        key: token,
        body: { url: receiver.url },
      });
      expectStatus(made, 201);
      t.trackSecret(made.body.secret);
    }
    for (const role of ["member", "viewer", "billing"] as const) {
      const { token } = await t.createMember(org.id, role);
      for (const [method, path, scope] of [
        ["GET", endpointsPath(org.id), "webhooks:read"],
        ["GET", `${endpointsPath(org.id)}/${created.id}/deliveries`, "webhooks:read"],
        ["POST", endpointsPath(org.id), "webhooks:write"],
      ] as const) {
        const res = await t.request<ProblemBody>(method, path, {
          key: token,
          ...(method === "POST" ? { body: { url: receiver.url } } : {}),
        });
        expectStatus(res, 403);
        expect(res.body.code, `${role} ${method} ${path}: ${res.text}`).toBe("insufficient_scope");
        expect(res.body.detail, res.text).toContain(scope);
      }
    }
  });

  it("lets a webhooks:read key read but not write", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const reader = await t.createKey(org.id, ["webhooks:read"]);
    expectStatus(await t.request("GET", `${endpointsPath(org.id)}/${created.id}`, { key: reader }), 200);
    expectStatus(
      await t.request("GET", `${endpointsPath(org.id)}/${created.id}/deliveries`, { key: reader }),
      200,
    );
    for (const [method, path] of [
      ["POST", endpointsPath(org.id)],
      ["PATCH", `${endpointsPath(org.id)}/${created.id}`],
      ["DELETE", `${endpointsPath(org.id)}/${created.id}`],
      ["POST", `${endpointsPath(org.id)}/${created.id}/rotate-secret`],
      ["POST", `${endpointsPath(org.id)}/${created.id}/test`],
    ] as const) {
      const res = await t.request<ProblemBody>(method, path, {
        key: reader,
        ...(method === "DELETE" ? {} : { body: {} }),
      });
      expectStatus(res, 403);
      expect(res.body.code, res.text).toBe("insufficient_scope");
      expect(res.body.detail, res.text).toContain("webhooks:write");
    }
    expectStatus(await getEndpoint(org.id, created.id), 200);
  });
});

describe("signing, test events and the delivery log", () => {
  it("sends a webhook.test event signed with the secret, and answers its delivery after the attempt", async () => {
    const org = await t.createOrg();
    // A type filter without webhook.test: the test event still goes to this endpoint.
    const created = await createEndpoint(org.id, { event_types: ["invoice.paid"] });
    const other = await createEndpoint(org.id);
    const delivery = await sendTest(org.id, created.id);
    expect(delivery).toMatchObject({
      object: "webhook_delivery",
      endpoint_id: created.id,
      event_type: "webhook.test",
      state: "delivered",
      attempts: 1,
      next_attempt_at: null,
      response_status: 200,
      last_error: null,
    });
    expect(delivery.id).toMatch(/^whd_[0-9a-z]{26}$/);
    expect(delivery.event_id).toMatch(/^evt_[0-9a-z]{26}$/);
    expect(delivery.latency_ms).toEqual(expect.any(Number));
    expect(delivery.delivered_at).not.toBeNull();

    const got = receivedFor(delivery.event_id);
    expect(got).toHaveLength(1);
    const [request] = got;
    if (request === undefined) {
      throw new Error("unreachable: length checked");
    }
    expect(request.headers["content-type"]).toMatch(/^application\/json/);
    expect(request.headers["user-agent"]).toMatch(/^Orgplane-Webhooks\/\d+\.\d+\.\d+/);
    expect(Number(request.headers["webhook-timestamp"])).toBeCloseTo(Date.now() / 1000, -2);
    const envelope = verifyWith(created.secret, request);
    expect(envelope).toMatchObject({
      id: delivery.event_id,
      type: "webhook.test",
      sequence: expect.any(Number),
      data: expect.objectContaining({ endpoint_id: created.id }),
    });
    expect(new Date(envelope.created_at).toISOString()).toBe(envelope.created_at);
    // Another endpoint's secret does not verify it: the check above can fail.
    expect(() => verifyWith(other.secret, request)).toThrow();
    // The test event went to this endpoint only.
    expect(await listDeliveries(org.id, other.id)).toEqual([]);
  });

  it("signs with both secrets during a rotation's overlap, each verifying alone, then with the new one", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const rotated = await t.request<EndpointWithSecret>(
      "POST",
      `${endpointsPath(org.id)}/${created.id}/rotate-secret`,
      { body: { expire_previous_in_seconds: 3600 } },
    );
    expectStatus(rotated, 200);
    t.trackSecret(rotated.body.secret);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(created.secret);
    expect(rotated.body.id).toBe(created.id);
    const until = Date.parse(rotated.body.secret_rotated_until ?? "");
    expect(Math.abs(until - (Date.now() + 3_600_000))).toBeLessThan(60_000);

    const delivery = await sendTest(org.id, created.id);
    expect(delivery).toMatchObject({ state: "delivered", response_status: 200 });
    const [request] = receivedFor(delivery.event_id);
    if (request === undefined) {
      throw new Error("the test event never reached the receiver");
    }
    const signatures = signedHeaders(request)["webhook-signature"]?.split(" ") ?? [];
    expect(signatures).toHaveLength(2);
    for (const signature of signatures) {
      expect(signature).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    }
    // Receivers holding either secret accept it; each signature is made by exactly one of them.
    expect(verifyWith(created.secret, request).id).toBe(delivery.event_id);
    expect(verifyWith(rotated.body.secret, request).id).toBe(delivery.event_id);
    const alone = eachSignatureAlone(request);
    const verifies = (secret: string) =>
      alone.filter((r) => {
        try {
          verifyWith(secret, r);
          return true;
        } catch {
          return false;
        }
      }).length;
    expect(verifies(created.secret)).toBe(1);
    expect(verifies(rotated.body.secret)).toBe(1);

    // Rotating again with no overlap: the newest secret alone signs.
    const again = await t.request<EndpointWithSecret>(
      "POST",
      `${endpointsPath(org.id)}/${created.id}/rotate-secret`,
    );
    expectStatus(again, 200);
    t.trackSecret(again.body.secret);
    // No overlap: the previous secret's time is over already (or was never kept).
    const overlapEnd = again.body.secret_rotated_until;
    expect(overlapEnd === null || Date.parse(overlapEnd) <= Date.now()).toBe(true);
    const after = await sendTest(org.id, created.id);
    const [single] = receivedFor(after.event_id);
    if (single === undefined) {
      throw new Error("the test event never reached the receiver");
    }
    expect(signedHeaders(single)["webhook-signature"]?.split(" ")).toHaveLength(1);
    expect(verifyWith(again.body.secret, single).id).toBe(after.event_id);
    expect(() => verifyWith(rotated.body.secret, single)).toThrow();
    expect(() => verifyWith(created.secret, single)).toThrow();
  });

  it("logs deliveries newest first, filters by state, and redelivers with a new attempt", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const delivered = await sendTest(org.id, created.id);

    receiver.status = 500;
    const failing = await sendTest(org.id, created.id);
    expect(failing).toMatchObject({ state: "pending", attempts: 1, response_status: 500 });
    expect(failing.last_error).toContain("500");
    // Retried on the schedule: the second attempt is due 5 s after the first (which took well under 1 s).
    const due = Date.parse(failing.next_attempt_at ?? "") - Date.parse(failing.last_attempt_at ?? "");
    expect(due).toBeGreaterThanOrEqual(5_000);
    expect(due).toBeLessThan(6_000);

    const all = await listDeliveries(org.id, created.id);
    expect(all.map((d) => d.id)).toEqual([failing.id, delivered.id]);
    expect(all[0]).toEqual(failing);
    expect((await listDeliveries(org.id, created.id, "&state=pending")).map((d) => d.id)).toEqual([
      failing.id,
    ]);
    expect((await listDeliveries(org.id, created.id, "&state=delivered")).map((d) => d.id)).toEqual([
      delivered.id,
    ]);
    expect(await listDeliveries(org.id, created.id, "&state=failed")).toEqual([]);

    const one = await t.request<Delivery>(
      "GET",
      `${endpointsPath(org.id)}/${created.id}/deliveries/${failing.id}`,
    );
    expectStatus(one, 200);
    expect(one.body).toEqual(failing);

    receiver.status = 204;
    const redelivered = await t.request<Delivery>(
      "POST",
      `${endpointsPath(org.id)}/${created.id}/deliveries/${failing.id}/redeliver`,
    );
    expectStatus(redelivered, 200);
    expect(redelivered.body).toMatchObject({
      id: failing.id,
      event_id: failing.event_id,
      state: "delivered",
      attempts: 2,
      response_status: 204,
      last_error: null,
      next_attempt_at: null,
    });
    // The same event, freshly signed with the same webhook-id: a receiver can drop the duplicate.
    const attempts = receivedFor(failing.event_id);
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) {
      expect(verifyWith(created.secret, attempt).id).toBe(failing.event_id);
    }

    // A delivered one may be sent again too.
    receiver.status = 200;
    const replayed = await t.request<Delivery>(
      "POST",
      `${endpointsPath(org.id)}/${created.id}/deliveries/${delivered.id}/redeliver`,
    );
    expectStatus(replayed, 200);
    expect(replayed.body).toMatchObject({ state: "delivered", attempts: 2, response_status: 200 });
    expect(receivedFor(delivered.event_id)).toHaveLength(2);
    expect(await listDeliveries(org.id, created.id, "&state=pending")).toEqual([]);
  });

  it("pages the delivery log with limit and cursor", async () => {
    const org = await t.createOrg();
    const created = await createEndpoint(org.id);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push((await sendTest(org.id, created.id)).id);
    }
    const first = await t.request<ListBody<Delivery>>(
      "GET",
      `${endpointsPath(org.id)}/${created.id}/deliveries?limit=2`,
    );
    expectStatus(first, 200);
    expect(first.body.has_more).toBe(true);
    const second = await t.request<ListBody<Delivery>>(
      "GET",
      `${endpointsPath(org.id)}/${created.id}/deliveries?limit=2&cursor=${first.body.next_cursor}`,
    );
    expectStatus(second, 200);
    expect(second.body.has_more).toBe(false);
    expect([...first.body.data, ...second.body.data].map((d) => d.id)).toEqual([...ids].reverse());
  });
});

describe("the SSRF guard (WEBHOOK_ALLOW_PRIVATE=false, the default)", () => {
  let guarded: TestContext;
  beforeAll(async () => {
    guarded = await createTestContext({ webhooks: { allowPrivate: false } });
  });
  afterAll(() => guarded.close());

  it.each([
    ["plain http", "http://example.com/hooks"],
    ["localhost", "https://localhost/hooks"],
    ["a name under localhost", "https://app.localhost:8443/hooks"],
    ["IPv4 loopback", "https://127.0.0.1/hooks"],
    ["another loopback address", "https://127.8.9.10:9000/hooks"],
    ["a private 10/8 address", "https://10.1.2.3/hooks"],
    ["a private 192.168/16 address", "https://192.168.0.10/hooks"],
    ["a private 172.16/12 address", "https://172.20.0.1/hooks"],
    ["the cloud metadata address", "https://169.254.169.254/latest/meta-data"],
    ["the unspecified address", "https://0.0.0.0/hooks"],
    ["IPv6 loopback", "https://[::1]/hooks"],
    ["an IPv6 unique-local address", "https://[fd00::1]/hooks"],
    ["an IPv6 link-local address", "https://[fe80::1]/hooks"],
    ["IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/hooks"],
    ["loopback written as one number", "https://2130706433/hooks"],
  ])("refuses %s at create and update, changing nothing", async (_label, url) => {
    const org = await guarded.createOrg();
    const res = await guarded.request<ProblemBody>("POST", endpointsPath(org.id), { body: { url } });
    expectValidationError(res, "url");

    const created = await guarded.request<EndpointWithSecret>("POST", endpointsPath(org.id), {
      body: { url: "https://example.com/hooks" },
    });
    expectStatus(created, 201);
    guarded.trackSecret(created.body.secret);
    const update = await guarded.request<ProblemBody>(
      "PATCH",
      `${endpointsPath(org.id)}/${created.body.id}`,
      {
        body: { url },
      },
    );
    expectValidationError(update, "url");
    const list = await guarded.request<ListBody<Endpoint>>("GET", endpointsPath(org.id));
    expect(list.body.data.map((e) => e.url)).toEqual(["https://example.com/hooks"]);
  });

  it("accepts https on a public host", async () => {
    const org = await guarded.createOrg();
    const res = await guarded.request<EndpointWithSecret>("POST", endpointsPath(org.id), {
      body: { url: "https://hooks.example.com:8443/orgplane?source=orgplane" },
    });
    expectStatus(res, 201);
    guarded.trackSecret(res.body.secret);
    expect(res.body.url).toBe("https://hooks.example.com:8443/orgplane?source=orgplane");
  });
});
