import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { z } from "@hono/zod-openapi";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { IntegrationProbe } from "../../src/domain/integrations/integrations.types.ts";
import type { ProblemBody } from "../../src/http/problem.ts";
import type {
  IntegrationsSchema,
  IntegrationTestResultsSchema,
} from "../../src/http/schemas/integrations.ts";
import { createOutboundClient, type OutboundClient } from "../../src/infra/outbound-http.ts";
import {
  createTestContext,
  expectStatus,
  type ListBody,
  type TestContext,
  type TestResponse,
  testSecretBox,
} from "../harness.ts";

type Integrations = z.infer<typeof IntegrationsSchema>;
type TestResults = z.infer<typeof IntegrationTestResultsSchema>;
type AuditEventBody = { action: string; changes: Record<string, { from?: unknown; to?: unknown }> };

/** One request as the local receiver saw it. */
type Received = { headers: IncomingHttpHeaders; body: string };

/**
 * A stand-in Prometheus or Loki on 127.0.0.1: records every request and answers `status` (with `echoAuth`,
 * a 500 whose body repeats the Authorization header, as a careless proxy might).
 */
type Receiver = {
  url: string;
  received: Received[];
  status: number;
  echoAuth: boolean;
  close(): Promise<void>;
};

async function startReceiver(path: string): Promise<Receiver> {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: "",
    received,
    status: 200,
    echoAuth: false,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      if (receiver.echoAuth) {
        res.writeHead(500, { "Content-Type": "text/plain" });
        res.end(`bad credentials: ${req.headers.authorization ?? ""}`);
        return;
      }
      res.writeHead(receiver.status, { "Content-Type": "text/plain" });
      res.end(receiver.status < 300 ? "" : "ingester unavailable");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  return receiver;
}

/**
 * The test call's probes as the exporters' are built: one POST through the shared outbound client with
 * basic auth `id:token` (the real remote-write and Loki bodies are the exporters' own tests' business).
 */
function receiverProbe(client: OutboundClient): IntegrationProbe {
  return async (config) => {
    const result = await client.post(config.endpoint, {
      headers: {
        authorization: `Basic ${Buffer.from(`${config.id}:${config.token}`).toString("base64")}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ sample: config.kind, org_id: config.orgId }),
      timeoutMs: 5000,
    });
    return {
      ok: result.error === null,
      status: result.status,
      error: result.error,
      latencyMs: result.latencyMs,
    };
  };
}

let t: TestContext;
let prometheus: Receiver;
let loki: Receiver;
let client: OutboundClient;
let tokenSeq = 0;

beforeAll(async () => {
  prometheus = await startReceiver("/api/prom/push");
  loki = await startReceiver("/loki/api/v1/push");
  client = createOutboundClient({ allowPrivate: true });
  const probe = receiverProbe(client);
  t = await createTestContext({ integrations: { probes: { prometheus: probe, loki: probe } } });
});
afterAll(async () => {
  client.close();
  await prometheus.close();
  await loki.close();
  await t.close();
});
beforeEach(() => {
  for (const r of [prometheus, loki]) {
    r.status = 200;
    r.echoAuth = false;
  }
});

/** A fresh token the harness watches for in every log line (checked at close). */
function newToken(label: string): string {
  tokenSeq += 1;
  const token = `glc_${label}_${tokenSeq}_${Math.random().toString(36).slice(2)}Zq7w`;
  t.trackSecret(token);
  return token;
}

function path(orgId: string): string {
  return `/v1/organizations/${orgId}/integrations`;
}

async function getIntegrations(orgId: string, key?: string): Promise<Integrations> {
  const res = await t.request<Integrations>("GET", path(orgId), key === undefined ? {} : { key });
  expectStatus(res, 200);
  return res.body;
}

async function put(orgId: string, body: unknown, key?: string): Promise<TestResponse<Integrations>> {
  return t.request<Integrations>("PUT", path(orgId), key === undefined ? { body } : { body, key });
}

/** The organization's token of `kind`, as the exporters read it (decrypted through the service). */
async function activeToken(orgId: string, kind: "prometheus" | "loki"): Promise<string | undefined> {
  const configs = await t.services.integrations.active(kind);
  return configs.find((c) => c.orgId === orgId)?.token;
}

function expectNoSecret(text: string, tokens: readonly string[]): void {
  for (const token of tokens) {
    expect(text, "a token appears").not.toContain(token);
    expect(text, "a token's start appears").not.toContain(token.slice(0, 12));
  }
}

function expectValidationError(res: TestResponse<ProblemBody>, field: string): void {
  expectStatus(res, 400);
  expect(res.headers.get("content-type"), res.text).toMatch(/^application\/problem\+json/);
  expect(res.body.code, res.text).toBe("validation_failed");
  expect(
    res.body.errors?.map((e) => e.path),
    res.text,
  ).toContain(field);
}

describe("GET and PUT /v1/organizations/{org_id}/integrations", () => {
  it("shows none configured on a fresh organization", async () => {
    const org = await t.createOrg();
    expect(await getIntegrations(org.id)).toEqual({
      object: "integrations",
      org_id: org.id,
      prometheus: null,
      loki: null,
    });
  });

  it("sets both, answers endpoint, id and the token's last four only, and GET shows the same with status fields", async () => {
    const org = await t.createOrg();
    const [promToken, lokiToken] = [newToken("prom"), newToken("loki")];
    const res = await put(org.id, {
      prometheus: { endpoint: prometheus.url, id: "1234567", token: promToken },
      loki: { endpoint: loki.url, id: "7654321", token: lokiToken },
    });
    expectStatus(res, 200);
    expect(res.body.prometheus).toMatchObject({
      endpoint: prometheus.url,
      id: "1234567",
      token_last4: promToken.slice(-4),
      last_success_at: null,
      last_error: null,
      last_error_at: null,
      dropped_batches: 0,
      dropped_lines: 0,
    });
    expect(res.body.loki).toMatchObject({
      endpoint: loki.url,
      id: "7654321",
      token_last4: lokiToken.slice(-4),
    });
    expectNoSecret(res.text, [promToken, lokiToken]);
    expect(Object.keys(res.body.prometheus ?? {})).not.toContain("token");

    const read = await t.request<Integrations>("GET", path(org.id));
    expectStatus(read, 200);
    expect(read.body).toEqual(res.body);
    expectNoSecret(read.text, [promToken, lokiToken]);

    // Sealed at rest: the column holds a v1 ciphertext, not the token.
    const stored = await t.database.pool.query<{ kind: string; token_ciphertext: string }>(
      "select kind, token_ciphertext from org_integrations where org_id = $1 order by kind",
      [org.id],
    );
    expect(stored.rows.map((r) => r.kind)).toEqual(["loki", "prometheus"]);
    for (const row of stored.rows) {
      expect(row.token_ciphertext).toMatch(/^v1:test:/);
      expectNoSecret(row.token_ciphertext, [promToken, lokiToken]);
    }
    expect(await activeToken(org.id, "prometheus")).toBe(promToken);
    expect(await activeToken(org.id, "loki")).toBe(lokiToken);
  });

  it("writes one audit event per PUT naming what was set or removed, without the token", async () => {
    const org = await t.createOrg();
    const [first, second] = [newToken("audit"), newToken("audit")];
    expectStatus(
      await put(org.id, { prometheus: { endpoint: prometheus.url, id: "inst-1", token: first } }),
      200,
    );
    expectStatus(
      await put(org.id, {
        prometheus: { endpoint: prometheus.url, id: "inst-1", token: second },
        loki: { endpoint: loki.url, id: "inst-2", token: first },
      }),
      200,
    );
    expectStatus(await put(org.id, { loki: null }), 200);
    // Nothing changes: no event.
    expectStatus(await put(org.id, { prometheus: { endpoint: prometheus.url, id: "inst-1" } }), 200);

    const res = await t.request<ListBody<AuditEventBody>>(
      "GET",
      `/v1/organizations/${org.id}/audit-events?action=organization.integrations_updated&limit=100`,
    );
    expectStatus(res, 200);
    expectNoSecret(res.text, [first, second]);
    const events = [...res.body.data].reverse();
    expect(events.map((e) => Object.keys(e.changes).sort())).toEqual([
      ["prometheus"],
      ["loki", "prometheus"],
      ["loki"],
    ]);
    expect(events[0]?.changes.prometheus).toEqual({
      from: null,
      to: { endpoint: prometheus.url, id: "inst-1", token_last4: first.slice(-4), token_replaced: true },
    });
    expect(events[1]?.changes.prometheus?.to).toMatchObject({ token_replaced: true });
    expect(events[2]?.changes.loki).toEqual({
      from: { endpoint: loki.url, id: "inst-2", token_last4: first.slice(-4) },
      to: null,
    });
  });

  it("keeps the stored token when a PUT leaves it out, removes with null, leaves absent kinds unchanged", async () => {
    const org = await t.createOrg();
    const [promToken, lokiToken] = [newToken("keep"), newToken("keep")];
    expectStatus(
      await put(org.id, {
        prometheus: { endpoint: prometheus.url, id: "a", token: promToken },
        loki: { endpoint: loki.url, id: "b", token: lokiToken },
      }),
      200,
    );
    const moved = `${prometheus.url}?tenant=2`;
    const res = await put(org.id, { prometheus: { endpoint: moved, id: "a2" } });
    expectStatus(res, 200);
    expect(res.body.prometheus).toMatchObject({
      endpoint: moved,
      id: "a2",
      token_last4: promToken.slice(-4),
    });
    expect(res.body.loki, "absent: unchanged").toMatchObject({ endpoint: loki.url, id: "b" });
    expect(await activeToken(org.id, "prometheus"), "the old token, decrypted").toBe(promToken);

    const removed = await put(org.id, { loki: null });
    expectStatus(removed, 200);
    expect(removed.body.loki).toBeNull();
    expect(removed.body.prometheus).toMatchObject({ endpoint: moved });
    expect(await activeToken(org.id, "loki")).toBeUndefined();
    expect((await getIntegrations(org.id)).loki).toBeNull();

    // Removing what is not there, and an empty body, change nothing.
    expectStatus(await put(org.id, { loki: null }), 200);
    const same = await put(org.id, {});
    expectStatus(same, 200);
    expect(same.body).toEqual(removed.body);
  });

  it("shows no last four of a short token", async () => {
    const org = await t.createOrg();
    const token = "s3cr3t";
    t.trackSecret(token);
    const res = await put(org.id, { loki: { endpoint: loki.url, id: "x", token } });
    expectStatus(res, 200);
    expect(res.body.loki?.token_last4).toBeNull();
    expect(await activeToken(org.id, "loki")).toBe(token);
  });

  it("refuses invalid bodies with 400 validation_failed and changes nothing", async () => {
    const org = await t.createOrg();
    const token = newToken("valid");
    expectStatus(await put(org.id, { prometheus: { endpoint: prometheus.url, id: "keep", token } }), 200);
    const before = await getIntegrations(org.id);
    const good = { endpoint: loki.url, id: "x", token: newToken("x") };
    const cases: [unknown, string][] = [
      [{ prom: good }, ""],
      [{ loki: { ...good, tenant: "1" } }, "loki"],
      [{ loki: { ...good, id: "" } }, "loki.id"],
      [{ loki: { ...good, token: "" } }, "loki.token"],
      [{ loki: { ...good, token: "t".repeat(1025) } }, "loki.token"],
      [{ loki: { ...good, id: "i".repeat(1025) } }, "loki.id"],
      [{ loki: { ...good, id: "nul\u0000" } }, "loki.id"],
      [{ loki: { endpoint: loki.url, token: good.token } }, "loki.id"],
      [{ loki: { ...good, endpoint: "not a url" } }, "loki.endpoint"],
      [{ loki: { ...good, endpoint: "ftp://logs.example.com/push" } }, "loki.endpoint"],
      [{ loki: { ...good, endpoint: "https://user:pw@logs.example.com/push" } }, "loki.endpoint"],
      [{ loki: { ...good, endpoint: `https://logs.example.com/${"p".repeat(2048)}` } }, "loki.endpoint"],
      [{ loki: "https://logs.example.com" }, "loki"],
      // No loki is stored: a token must be given.
      [{ loki: { endpoint: loki.url, id: "x" } }, "loki.token"],
      // A valid prometheus change does not go through beside an invalid loki.
      [
        { prometheus: { endpoint: prometheus.url, id: "changed" }, loki: { ...good, endpoint: "nope" } },
        "loki.endpoint",
      ],
    ];
    for (const [body, field] of cases) {
      const res = await t.request<ProblemBody>("PUT", path(org.id), { body });
      expectValidationError(res, field);
      expectNoSecret(res.text, [token, good.token]);
    }
    const raw = await t.request<ProblemBody>("PUT", path(org.id), {
      rawBody: "[1,2]",
      headers: { "Content-Type": "application/json" },
    });
    expectStatus(raw, 400);
    expect(await getIntegrations(org.id)).toEqual(before);
    expect(await activeToken(org.id, "prometheus")).toBe(token);
  });

  it("answers 404 for another organization's integrations, to its keys and members alike", async () => {
    const { key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    const token = newToken("other");
    expectStatus(await put(other.id, { loki: { endpoint: loki.url, id: "o", token } }), 200);
    const get = await t.request<ProblemBody>("GET", path(other.id), { key });
    expectStatus(get, 404);
    const change = await t.request<ProblemBody>("PUT", path(other.id), { key, body: { loki: null } });
    expectStatus(change, 404);
    const test = await t.request<ProblemBody>("POST", `${path(other.id)}/test`, { key });
    expectStatus(test, 404);
    expectNoSecret(get.text + change.text + test.text, [token]);
    expect((await getIntegrations(other.id)).loki).not.toBeNull();
    expect(await t.request("GET", path("org_01jd0v4n6qf9yb5c8h2m3k7x1z"))).toMatchObject({ status: 404 });
  });

  it("needs orgs:read to read and orgs:write to change or test (viewers read, but do not change)", async () => {
    const org = await t.createOrg();
    const reader = await t.createKey(org.id, ["orgs:read"]);
    const body = { loki: { endpoint: loki.url, id: "r", token: newToken("scope") } };
    expectStatus(await t.request("GET", path(org.id), { key: reader }), 200);
    const refused = await t.request<ProblemBody>("PUT", path(org.id), { key: reader, body });
    expectStatus(refused, 403);
    expect(refused.body.code).toBe("insufficient_scope");
    expectStatus(await t.request("POST", `${path(org.id)}/test`, { key: reader }), 403);
    const noRead = await t.createKey(org.id, ["usage:read"]);
    expectStatus(await t.request("GET", path(org.id), { key: noRead }), 403);

    const viewer = await t.createMember(org.id, "viewer");
    expectStatus(await t.request("GET", path(org.id), { key: viewer.token }), 200);
    expectStatus(await t.request("PUT", path(org.id), { key: viewer.token, body }), 403);
    const admin = await t.createMember(org.id, "admin");
    expectStatus(await t.request("PUT", path(org.id), { key: admin.token, body }), 200);
  });
});

describe("PUT /v1/organization/integrations (the credential's own organization)", () => {
  it("sets the integrations of the key's organization", async () => {
    const { org, key } = await t.createOrgWithKey();
    const token = newToken("current");
    const res = await t.request<Integrations>("PUT", "/v1/organization/integrations", {
      key,
      body: { prometheus: { endpoint: prometheus.url, id: "self", token } },
    });
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      org_id: org.id,
      prometheus: { id: "self", token_last4: token.slice(-4) },
    });
    expectNoSecret(res.text, [token]);
    expect((await getIntegrations(org.id)).prometheus).toMatchObject({ id: "self" });
    expect(await activeToken(org.id, "prometheus")).toBe(token);

    const operator = await t.request<ProblemBody>("PUT", "/v1/organization/integrations", {
      body: { prometheus: null },
    });
    expectStatus(operator, 403);
  });
});

describe("POST …/integrations/test", () => {
  it("sends one sample to each configured endpoint with basic auth and answers what each said", async () => {
    const org = await t.createOrg();
    const [promToken, lokiToken] = [newToken("probe"), newToken("probe")];
    expectStatus(
      await put(org.id, {
        prometheus: { endpoint: prometheus.url, id: "p-id", token: promToken },
        loki: { endpoint: loki.url, id: "l-id", token: lokiToken },
      }),
      200,
    );
    loki.status = 500;
    const [promSeen, lokiSeen] = [prometheus.received.length, loki.received.length];
    const res = await t.request<TestResults>("POST", `${path(org.id)}/test`);
    expectStatus(res, 200);
    expect(res.body).toMatchObject({
      object: "integration_test",
      org_id: org.id,
      prometheus: { ok: true, status: 200, error: null },
      loki: { ok: false, status: 500, error: "HTTP 500: ingester unavailable" },
    });
    expect(res.body.prometheus?.latency_ms).toBeGreaterThanOrEqual(0);
    const [promReq] = prometheus.received.slice(promSeen);
    const [lokiReq] = loki.received.slice(lokiSeen);
    expect(promReq?.headers.authorization).toBe(
      `Basic ${Buffer.from(`p-id:${promToken}`).toString("base64")}`,
    );
    expect(lokiReq?.headers.authorization).toBe(
      `Basic ${Buffer.from(`l-id:${lokiToken}`).toString("base64")}`,
    );

    const after = await getIntegrations(org.id);
    expect(after.prometheus?.last_success_at).not.toBeNull();
    expect(after.prometheus?.last_error).toBeNull();
    expect(after.loki).toMatchObject({ last_success_at: null, last_error: "HTTP 500: ingester unavailable" });
    expect(after.loki?.last_error_at).not.toBeNull();

    // The receiver recovers: last success is set, the last error stays to read.
    loki.status = 204;
    const again = await t.request<TestResults>("POST", `${path(org.id)}/test`);
    expect(again.body.loki).toMatchObject({ ok: true, status: 204 });
    const recovered = await getIntegrations(org.id);
    expect(recovered.loki?.last_success_at).not.toBeNull();
    expect(recovered.loki?.last_error).toBe("HTTP 500: ingester unavailable");
  });

  it("never answers or records the token, even when the endpoint echoes the Authorization header", async () => {
    const org = await t.createOrg();
    const token = newToken("echo");
    expectStatus(await put(org.id, { prometheus: { endpoint: prometheus.url, id: "echo", token } }), 200);
    prometheus.echoAuth = true;
    const res = await t.request<TestResults>("POST", `${path(org.id)}/test`);
    expectStatus(res, 200);
    expect(res.body.prometheus).toMatchObject({ ok: false, status: 500 });
    expect(res.body.prometheus?.error).toContain("[redacted]");
    const basic = Buffer.from(`echo:${token}`).toString("base64");
    expect(res.text).not.toContain(basic);
    expectNoSecret(res.text, [token]);
    const read = await t.request<Integrations>("GET", path(org.id));
    expect(read.text).not.toContain(basic);
    expectNoSecret(read.text, [token]);
    expect(t.logLines.join("")).not.toContain(basic);
  });

  it("answers null for what is not configured; through /v1/organization too", async () => {
    const { org, key } = await t.createOrgWithKey();
    const none = await t.request<TestResults>("POST", `${path(org.id)}/test`);
    expectStatus(none, 200);
    expect(none.body).toMatchObject({ prometheus: null, loki: null });
    expectStatus(await put(org.id, { loki: { endpoint: loki.url, id: "cur", token: newToken("cur") } }), 200);
    const current = await t.request<TestResults>("POST", "/v1/organization/integrations/test", { key });
    expectStatus(current, 200);
    expect(current.body).toMatchObject({ org_id: org.id, prometheus: null, loki: { ok: true, status: 200 } });
  });

  it("reports a refused connection as an error without a status", async () => {
    const org = await t.createOrg();
    const closed = await startReceiver("/push");
    await closed.close();
    expectStatus(
      await put(org.id, { loki: { endpoint: closed.url, id: "gone", token: newToken("gone") } }),
      200,
    );
    const res = await t.request<TestResults>("POST", `${path(org.id)}/test`);
    expect(res.body.loki).toMatchObject({ ok: false, status: null });
    expect(res.body.loki?.error).toMatch(/connection refused/);
  });
});

describe("the exporters' side: active(kind) and recordResults", () => {
  it("records a whole interval's results in one call: last success or error, dropped counts added", async () => {
    const [a, b] = [await t.createOrg(), await t.createOrg()];
    for (const org of [a, b]) {
      expectStatus(
        await put(org.id, { loki: { endpoint: loki.url, id: org.id, token: newToken("rec") } }),
        200,
      );
    }
    await t.services.integrations.recordResults([
      { orgId: a.id, kind: "loki", ok: true, error: null, droppedBatches: 0, droppedLines: 0 },
      { orgId: b.id, kind: "loki", ok: false, error: "HTTP 503", droppedBatches: 2, droppedLines: 700 },
      // An organization without that integration matches nothing.
      { orgId: a.id, kind: "prometheus", ok: false, error: "HTTP 500", droppedBatches: 1, droppedLines: 0 },
    ]);
    await t.services.integrations.recordResults([
      {
        orgId: b.id,
        kind: "loki",
        ok: false,
        error: "timed out after 5 s",
        droppedBatches: 1,
        droppedLines: 50,
      },
    ]);
    const [ra, rb] = [await getIntegrations(a.id), await getIntegrations(b.id)];
    expect(ra.loki).toMatchObject({ last_error: null, dropped_batches: 0, dropped_lines: 0 });
    expect(ra.loki?.last_success_at).not.toBeNull();
    expect(ra.prometheus).toBeNull();
    expect(rb.loki).toMatchObject({
      last_success_at: null,
      last_error: "timed out after 5 s",
      dropped_batches: 3,
      dropped_lines: 750,
    });
  });

  /** What each org's Loki row holds, as the store reads it, and the row's version (`xmin`). */
  async function lokiRows(orgIds: readonly string[]) {
    const found = await t.database.pool.query<{ org_id: string; version: string }>(
      "select org_id, xmin::text as version from org_integrations where kind = 'loki' and org_id = any($1)",
      [orgIds],
    );
    return Promise.all(
      orgIds.map(async (orgId) => {
        const row = (await t.database.stores.integrations.listForOrg(orgId)).find((r) => r.kind === "loki");
        return {
          success: row?.lastSuccessAt?.getTime() ?? null,
          error: row?.lastError ?? null,
          errorAt: row?.lastErrorAt?.getTime() ?? null,
          dropped: [row?.droppedBatches, row?.droppedLines],
          version: found.rows.find((r) => r.org_id === orgId)?.version,
        };
      }),
    );
  }
  async function lokiOrgs(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const org = await t.createOrg();
      expectStatus(
        await put(org.id, { loki: { endpoint: loki.url, id: org.id, token: newToken("steady") } }),
        200,
      );
      ids.push(org.id);
    }
    return ids;
  }
  const okResult = (orgId: string) => ({
    orgId,
    kind: "loki" as const,
    ok: true,
    error: null,
    droppedBatches: 0,
    droppedLines: 0,
  });
  const T0 = Date.parse("2027-01-04T10:00:00.000Z");

  it("writes a steady success again once in each refresh window, and leaves the row untouched in between", async () => {
    const [orgId = ""] = await lokiOrgs(1);
    const store = t.database.stores.integrations;
    const refreshMs = 300_000;
    await store.recordResults([okResult(orgId)], new Date(T0), refreshMs);
    let [before] = await lokiRows([orgId]);
    expect(before?.success).toBe(T0);
    const written = [T0];
    // A push a minute for 20 minutes.
    for (let at = T0 + 60_000; at <= T0 + 1_200_000; at += 60_000) {
      await store.recordResults([okResult(orgId)], new Date(at), refreshMs);
      const [now] = await lokiRows([orgId]);
      if (now?.success !== before?.success) {
        expect(now?.success).toBe(at);
        written.push(at);
      } else {
        // Nothing to change: not even a new row version.
        expect(now).toEqual(before);
      }
      before = now;
    }
    const gaps = written.slice(1).map((at, i) => at - (written[i] ?? 0));
    // The first rewrite comes when the integration's own window turns (within one window of the first
    // write); then one a window, exactly, for pushes a minute apart.
    expect(gaps.length).toBe(4);
    expect(gaps[0]).toBeLessThanOrEqual(refreshMs);
    expect(gaps.slice(1)).toEqual([refreshMs, refreshMs, refreshMs]);
  });

  it("spreads the rewrites of successes written together over the window", async () => {
    const orgIds = await lokiOrgs(20);
    const store = t.database.stores.integrations;
    const refreshMs = 300_000;
    await store.recordResults(orgIds.map(okResult), new Date(T0), refreshMs);
    const firstRewrite = new Map<string, number>();
    // Every org pushed every 10 s for one window: each is written again once, at its own window's turn.
    for (let at = T0 + 10_000; at <= T0 + refreshMs; at += 10_000) {
      await store.recordResults(orgIds.map(okResult), new Date(at), refreshMs);
      for (const [i, row] of (await lokiRows(orgIds)).entries()) {
        const orgId = orgIds[i] ?? "";
        if (row.success !== T0 && !firstRewrite.has(orgId)) {
          expect(row.success).toBe(at);
          firstRewrite.set(orgId, at);
        }
      }
    }
    expect(firstRewrite.size).toBe(orgIds.length);
    // 20 orgs over 30 possible pushes: a rule by age alone would have written all 20 at the same push.
    expect(new Set(firstRewrite.values()).size).toBeGreaterThanOrEqual(6);
  });

  it("writes a change of state, a new message and dropped counts at once, not a repeated failure within its window", async () => {
    const [orgId = ""] = await lokiOrgs(1);
    const store = t.database.stores.integrations;
    // A window so long (about 300 years) that none turns within this test's few minutes.
    const longMs = 1e13;
    const at = (seconds: number) => new Date(T0 + seconds * 1000);
    const failed = (error: string) => ({ ...okResult(orgId), ok: false, error });
    const status = async () => (await lokiRows([orgId]))[0];

    await store.recordResults([okResult(orgId)], at(0), longMs);
    const first = await status();
    expect(first).toMatchObject({ success: at(0).getTime(), error: null, dropped: [0, 0] });
    await store.recordResults([okResult(orgId)], at(60), longMs);
    expect(await status()).toEqual(first);

    // A failure after a success is written at once; the same failure again is not.
    await store.recordResults([failed("HTTP 503")], at(70), longMs);
    const failing = await status();
    expect(failing).toMatchObject({ success: at(0).getTime(), error: "HTTP 503", errorAt: at(70).getTime() });
    await store.recordResults([failed("HTTP 503")], at(130), longMs);
    expect(await status()).toEqual(failing);
    // Another message is written at once; so are dropped counts, which only ever add up.
    await store.recordResults([failed("timed out after 5 s")], at(140), longMs);
    expect(await status()).toMatchObject({ error: "timed out after 5 s", errorAt: at(140).getTime() });
    await store.recordResults(
      [{ ...failed("timed out after 5 s"), droppedBatches: 1, droppedLines: 40 }],
      at(150),
      longMs,
    );
    expect(await status()).toMatchObject({ errorAt: at(140).getTime(), dropped: [1, 40] });

    // A success after a failure is written at once, though its window has not turned...
    await store.recordResults([okResult(orgId)], at(160), longMs);
    expect(await status()).toMatchObject({ success: at(160).getTime(), error: "timed out after 5 s" });
    // ...and so is a failure right after it: the later of the two times always tells the current state.
    await store.recordResults([failed("timed out after 5 s")], at(170), longMs);
    expect(await status()).toMatchObject({ success: at(160).getTime(), errorAt: at(170).getTime() });

    // A refresh of 0 (the test call's) writes every result.
    await store.recordResults([failed("timed out after 5 s")], at(171), 0);
    expect((await status())?.errorAt).toBe(at(171).getTime());
  });

  it("answers every organization's config of a kind, and a change made here at once", async () => {
    const org = await t.createOrg();
    const [first, second] = [newToken("act"), newToken("act")];
    expectStatus(
      await put(org.id, { prometheus: { endpoint: prometheus.url, id: "v1", token: first } }),
      200,
    );
    const configs = await t.services.integrations.active("prometheus");
    const mine = configs.find((c) => c.orgId === org.id);
    expect(mine).toMatchObject({ kind: "prometheus", endpoint: prometheus.url, id: "v1", token: first });
    expect(configs.every((c) => c.kind === "prometheus")).toBe(true);
    expectStatus(
      await put(org.id, { prometheus: { endpoint: prometheus.url, id: "v2", token: second } }),
      200,
    );
    expect(await activeToken(org.id, "prometheus")).toBe(second);
    expectStatus(await put(org.id, { prometheus: null }), 200);
    expect(await activeToken(org.id, "prometheus")).toBeUndefined();
  });
});

describe("the SSRF guard (INTEGRATIONS_ALLOW_PRIVATE=false, the default)", () => {
  let guarded: TestContext;
  let guardedClient: OutboundClient;
  beforeAll(async () => {
    guardedClient = createOutboundClient({ allowPrivate: false });
    const probe = receiverProbe(guardedClient);
    guarded = await createTestContext({
      integrations: { allowPrivate: false, probes: { prometheus: probe, loki: probe } },
    });
  });
  afterAll(async () => {
    guardedClient.close();
    await guarded.close();
  });

  it.each([
    ["plain http", "http://prometheus.example.com/push"],
    ["localhost", "https://localhost/push"],
    ["IPv4 loopback", "https://127.0.0.1:9090/api/v1/write"],
    ["a private 10/8 address", "https://10.1.2.3/push"],
    ["the cloud metadata address", "https://169.254.169.254/latest/meta-data"],
    ["IPv6 loopback", "https://[::1]/push"],
    ["IPv4-mapped loopback", "https://[::ffff:127.0.0.1]/push"],
  ])("refuses %s, changing nothing", async (_label, endpoint) => {
    const org = await guarded.createOrg();
    const token = "glc_guarded_token_value";
    guarded.trackSecret(token);
    for (const kind of ["prometheus", "loki"]) {
      const res = await guarded.request<ProblemBody>("PUT", path(org.id), {
        body: { [kind]: { endpoint, id: "x", token } },
      });
      expectValidationError(res, `${kind}.endpoint`);
      expect(res.text).not.toContain(token);
    }
    const read = await guarded.request<Integrations>("GET", path(org.id));
    expect(read.body).toMatchObject({ prometheus: null, loki: null });
  });

  it("accepts https on a public host name", async () => {
    const org = await guarded.createOrg();
    const res = await guarded.request<Integrations>("PUT", path(org.id), {
      body: {
        prometheus: {
          endpoint: "https://prometheus-prod-01.example.com/api/prom/push",
          id: "1",
          token: "t".repeat(20),
        },
      },
    });
    guarded.trackSecret("t".repeat(20));
    expectStatus(res, 200);
  });

  it("refuses at connect time a host name that resolves to a loopback address", async () => {
    const org = await guarded.createOrg();
    const port = new URL(prometheus.url).port;
    const token = "glc_rebound_token_value";
    guarded.trackSecret(token);
    // Stored as if the name had resolved publicly when saved and been re-pointed since (DNS rebinding).
    await guarded.database.stores.integrations.upsert({
      orgId: org.id,
      kind: "prometheus",
      endpoint: `https://localhost:${port}/api/prom/push`,
      clientId: "rebound",
      tokenCiphertext: testSecretBox.seal(token, `org_integrations:${org.id}:prometheus`),
      tokenLast4: token.slice(-4),
      at: new Date(),
    });
    const seen = prometheus.received.length;
    const res = await guarded.request<TestResults>("POST", `${path(org.id)}/test`);
    expectStatus(res, 200);
    expect(res.body.prometheus).toMatchObject({ ok: false, status: null });
    expect(res.body.prometheus?.error).toMatch(/^refused: localhost resolves to .*not a public address/);
    expect(prometheus.received.length, "nothing reached the receiver").toBe(seen);
    const read = await guarded.request<Integrations>("GET", path(org.id));
    expect(read.body.prometheus?.last_error).toMatch(/^refused: localhost resolves to/);
    expect(read.text).not.toContain(token);
  });
});
