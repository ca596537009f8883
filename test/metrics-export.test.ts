import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { uncompress } from "snappyjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/infra/logger.ts";
import {
  createMetricsExporter,
  type MetricsExporter,
  placeOf,
} from "../src/infra/metrics-export/exporter.ts";
import {
  createOrgMetrics,
  type OrgMetrics,
  renderExposition,
} from "../src/infra/metrics-export/org-metrics.ts";
import {
  encodeWriteRequest,
  remoteWriteBody,
  type TimeSeries,
} from "../src/infra/metrics-export/remote-write.ts";
import { createOutboundClient } from "../src/infra/outbound-http.ts";
import { type Clock, systemClock } from "../src/lib/clock.ts";
import { newId } from "../src/lib/ids.ts";
import {
  createExportLease,
  createMetricsExportStore,
  MAX_PROJECTS_PER_ORG,
  type OrgFigures,
  OTHER_PROJECTS,
} from "../src/store/metrics-export.store.pg.ts";
import { createManualClock, createTestContext, expectStatus, type TestContext } from "./harness.ts";

/**
 * The per-organization metrics export (issue 9), without Prometheus itself (test/prometheus-export.test.ts
 * has the real one): the remote-write encoding decoded by an independent decoder written here, snappy, the
 * registry's labels and bounds, the database figures, the pushes to a local receiver, and GET …/metrics.
 */

// ---------------------------------------------------------------------------------------------------------
// A protobuf decoder of its own (wire format only), so the encoder is not checked against itself.

type Field = { field: number; wire: number; varint?: number; bytes?: Uint8Array; fixed64?: DataView };

function readVarint(buf: Uint8Array, start: number): [number, number] {
  let result = 0;
  let multiplier = 1;
  let pos = start;
  for (;;) {
    const byte = buf[pos++];
    if (byte === undefined) {
      throw new Error("truncated varint");
    }
    result += (byte & 0x7f) * multiplier;
    if (byte < 0x80) {
      return [result, pos];
    }
    multiplier *= 128;
  }
}

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, next] = readVarint(buf, pos);
    pos = next;
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) {
      const [v, after] = readVarint(buf, pos);
      out.push({ field, wire, varint: v });
      pos = after;
    } else if (wire === 1) {
      out.push({ field, wire, fixed64: new DataView(buf.buffer, buf.byteOffset + pos, 8) });
      pos += 8;
    } else if (wire === 2) {
      const [len, after] = readVarint(buf, pos);
      out.push({ field, wire, bytes: buf.subarray(after, after + len) });
      pos = after + len;
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  if (pos !== buf.length) {
    throw new Error("trailing bytes");
  }
  return out;
}

type Decoded = { labels: [string, string][]; samples: { value: number; timestampMs: number }[] };

function decodeWriteRequest(buf: Uint8Array): Decoded[] {
  const text = new TextDecoder();
  return fields(buf).map((ts) => {
    expect([ts.field, ts.wire]).toEqual([1, 2]);
    const decoded: Decoded = { labels: [], samples: [] };
    for (const f of fields(ts.bytes ?? new Uint8Array())) {
      const inner = fields(f.bytes ?? new Uint8Array());
      if (f.field === 1) {
        const name = inner.find((x) => x.field === 1)?.bytes ?? new Uint8Array();
        const value = inner.find((x) => x.field === 2)?.bytes ?? new Uint8Array();
        decoded.labels.push([text.decode(name), text.decode(value)]);
      } else if (f.field === 2) {
        const value = inner.find((x) => x.field === 1 && x.wire === 1)?.fixed64?.getFloat64(0, true);
        const timestampMs = inner.find((x) => x.field === 2 && x.wire === 0)?.varint;
        decoded.samples.push({ value: value ?? Number.NaN, timestampMs: timestampMs ?? -1 });
      } else {
        throw new Error(`unexpected TimeSeries field ${f.field}`);
      }
    }
    return decoded;
  });
}

function decodeBody(body: Buffer): Decoded[] {
  return decodeWriteRequest(uncompress(new Uint8Array(body)));
}

// ---------------------------------------------------------------------------------------------------------

describe("remote-write encoding", () => {
  const series: TimeSeries[] = [
    {
      labels: [
        { name: "org_id", value: "org_1" },
        { name: "category", value: "search" },
        { name: "__name__", value: "orgplane_authorize_decisions_total" },
        { name: "Outcome", value: 'é ☃ "quoted"' },
      ],
      // A timestamp past 2^32 ms (any date after 1970-02-19) and a value that is not an integer.
      samples: [{ value: 0.1, timestampMs: 1_764_130_000_123 }],
    },
    { labels: [{ name: "__name__", value: "up" }], samples: [{ value: 0, timestampMs: 0 }] },
    {
      labels: [{ name: "__name__", value: "two" }],
      samples: [
        { value: -3.5e300, timestampMs: 1 },
        { value: 12345678901, timestampMs: 2 ** 53 - 1 },
      ],
    },
  ];

  it("writes a WriteRequest an independent decoder reads back, labels sorted by name", () => {
    const decoded = decodeWriteRequest(encodeWriteRequest(series));
    expect(decoded).toEqual([
      {
        // Byte order: upper-case sorts before `_`, which sorts before lower-case.
        labels: [
          ["Outcome", 'é ☃ "quoted"'],
          ["__name__", "orgplane_authorize_decisions_total"],
          ["category", "search"],
          ["org_id", "org_1"],
        ],
        samples: [{ value: 0.1, timestampMs: 1_764_130_000_123 }],
      },
      { labels: [["__name__", "up"]], samples: [{ value: 0, timestampMs: 0 }] },
      {
        labels: [["__name__", "two"]],
        samples: [
          { value: -3.5e300, timestampMs: 1 },
          { value: 12345678901, timestampMs: 2 ** 53 - 1 },
        ],
      },
    ]);
    expect(encodeWriteRequest([])).toHaveLength(0);
  });

  it("compresses with snappy's block format", () => {
    const many: TimeSeries[] = Array.from({ length: 500 }, (_, i) => ({
      labels: [
        { name: "__name__", value: "orgplane_requests_total" },
        { name: "org_id", value: "org_01jd0v4n6qf9yb5c8h2m3k7x1z" },
        { name: "category", value: `c${i % 5}` },
      ],
      samples: [{ value: i, timestampMs: 1_764_130_000_000 }],
    }));
    const raw = encodeWriteRequest(many);
    const body = remoteWriteBody(many);
    expect(Buffer.from(uncompress(new Uint8Array(body)))).toEqual(Buffer.from(raw));
    expect(body.length).toBeLessThan(raw.length / 3);
  });
});

// ---------------------------------------------------------------------------------------------------------

type Hit = { headers: Record<string, string>; body: Buffer };

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).map(([n, v]) => [n, Array.isArray(v) ? v.join(", ") : (v ?? "")]),
  );
}

/** A remote-write receiver: records every push per path; `/fail…` answers 500 echoing the request's headers. */
async function startReceiver(): Promise<{
  url(path: string): string;
  hits(path: string): Hit[];
  close(): Promise<void>;
}> {
  const hits = new Map<string, Hit[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "";
      const list = hits.get(path) ?? [];
      list.push({ headers: flatten(req.headers), body: Buffer.concat(chunks) });
      hits.set(path, list);
      if (path.startsWith("/fail")) {
        // A receiver that echoes what it got: the token must still never reach an error message.
        res.writeHead(500).end(`bad request from ${req.headers.authorization ?? ""}`);
        return;
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    hits: (path) => hits.get(path) ?? [],
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe("per-organization metrics", () => {
  let t: TestContext;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const logLines: string[] = [];
  const logger = createLogger("trace", { write: (line: string) => void logLines.push(line) });

  beforeAll(async () => {
    // Integrations are read fresh on every interval, so a test's PUT is seen by the next export at once.
    t = await createTestContext({ integrations: { activeCacheMs: 0 } });
    receiver = await startReceiver();
    t.services.telemetry.bind(t.services.orgMetrics.telemetry);
  });
  afterAll(async () => {
    await receiver?.close();
    await t?.close();
  });

  function store() {
    return createMetricsExportStore(t.database.db, t.catalog.meters);
  }

  it("counts decisions and requests per organization, category and outcome, with this process's instance", () => {
    const metrics = createOrgMetrics({ store: store(), clock: systemClock, instance: "host-a:1" });
    const at = new Date();
    const decision = { projectId: null, keyId: "key_x", cost: 1, at };
    metrics.telemetry.authorizeDecision({
      ...decision,
      orgId: "org_a",
      category: "search",
      allowed: true,
      reason: null,
      limit: { limit: 10, remaining: 7 },
    });
    metrics.telemetry.authorizeDecision({
      ...decision,
      orgId: "org_a",
      category: "search",
      allowed: false,
      reason: "rate_limited",
      limit: { limit: 10, remaining: 0 },
    });
    metrics.telemetry.authorizeDecision({
      ...decision,
      orgId: "org_b",
      category: "search",
      allowed: true,
      reason: null,
      limit: undefined,
    });
    metrics.telemetry.apiRequest({
      orgId: "org_a",
      category: "metadata",
      outcome: "allowed",
      limit: { limit: 20, remaining: 15 },
      at,
    });
    const text = renderExposition(metrics.samples("org_a", undefined, true));
    expect(text).toContain("# TYPE orgplane_authorize_decisions_total counter");
    expect(text).toContain(
      'orgplane_authorize_decisions_total{org_id="org_a",instance="host-a:1",category="search",outcome="allowed"} 1',
    );
    expect(text).toContain(
      'orgplane_authorize_decisions_total{org_id="org_a",instance="host-a:1",category="search",outcome="rate_limited"} 1',
    );
    expect(text).toContain(
      'orgplane_requests_total{org_id="org_a",instance="host-a:1",category="metadata",outcome="allowed"} 1',
    );
    // The highest share in use: 10 of 10 after the denial.
    expect(text).toContain(
      'orgplane_rate_limit_utilization{org_id="org_a",instance="host-a:1",category="search"} 1',
    );
    expect(text).toContain(
      'orgplane_rate_limit_utilization{org_id="org_a",instance="host-a:1",category="metadata"} 0.25',
    );
    expect(text).not.toContain("org_b");

    // A push reports the closed window only: after a rotation with nothing new, utilisation is 0 again.
    metrics.rotate();
    const pushed = metrics.samples("org_a", undefined, false);
    const utilization = pushed.filter((s) => s.family.name === "orgplane_rate_limit_utilization");
    expect(utilization.map((s) => s.value).sort()).toEqual([0.25, 1]);
    metrics.rotate();
    expect(
      metrics
        .samples("org_a", undefined, false)
        .filter((s) => s.family.name === "orgplane_rate_limit_utilization")
        .map((s) => s.value),
    ).toEqual([0, 0]);
  });

  it("bounds the label values an organization can create", () => {
    const metrics = createOrgMetrics({ store: store(), clock: systemClock, instance: "i" });
    for (let i = 0; i < 100; i++) {
      metrics.telemetry.authorizeDecision({
        orgId: "org_many",
        projectId: null,
        keyId: "key_x",
        category: `category_${i}`,
        allowed: false,
        reason: `reason_${i}`,
        cost: 1,
        limit: undefined,
        at: new Date(),
      });
    }
    const samples = metrics.samples("org_many", undefined, true);
    const categories = new Set(
      samples.map((s) => s.labels.find((l) => l.name === "category")?.value).filter((c) => c !== undefined),
    );
    expect(categories.size).toBe(65);
    expect(categories.has("_other")).toBe(true);
    const decisions = samples.filter((s) => s.family.name === "orgplane_authorize_decisions_total");
    expect(decisions.reduce((n, s) => n + s.value, 0)).toBe(100);
  });

  it("escapes label values in the text format", () => {
    const metrics = createOrgMetrics({ store: store(), clock: systemClock, instance: 'a"b\\c\nd' });
    metrics.telemetry.apiRequest({
      orgId: "org_esc",
      category: "metadata",
      outcome: "allowed",
      limit: { limit: 1, remaining: 1 },
      at: new Date(),
    });
    expect(renderExposition(metrics.samples("org_esc", undefined, true))).toContain(
      'instance="a\\"b\\\\c\\nd"',
    );
  });

  it("reads credits, usage per project (bounded), quotas and webhook figures for many organizations at once", async () => {
    const { org, key } = await t.createOrgWithKey();
    const { org: other, key: otherKey } = await t.createOrgWithKey();
    const projects: string[] = [];
    for (let i = 0; i < MAX_PROJECTS_PER_ORG + 2; i++) {
      const p = await t.services.projects.create(t.operatorCtx, org.id, {
        name: `project ${i}`,
        slug: undefined,
        state: undefined,
        metadata: undefined,
      });
      projects.push(p.id);
    }
    // Project i reports i + 1 documents in i + 1 events: the two least active are summed into _other.
    const now = new Date().toISOString();
    const events = projects.flatMap((p, i) =>
      Array.from({ length: i + 1 }, (_, j) => ({
        id: `e-${i}-${j}`,
        type: "documents",
        subject: p,
        time: now,
        data: { value: 1 },
      })),
    );
    events.push({ id: "org-level", type: "documents", subject: org.id, time: now, data: { value: 7 } });
    expectStatus(await t.request("POST", "/v1/usage/events", { key, body: { events } }), 200);
    expectStatus(
      await t.request("POST", "/v1/usage/events", {
        key: otherKey,
        body: { events: [{ id: "x", type: "documents", time: now, data: { value: 1000 } }] },
      }),
      200,
    );
    // Two finished deliveries (one delivered, one failed) and a pending one, written as the engine would.
    const endpointId = newId("whe");
    await t.database.pool.query(
      `insert into webhook_endpoints (id, org_id, url, is_active, secret, created_at, updated_at)
       values ($1, $2, 'https://example.test/hook', true, 'whsec_x', now(), now())`,
      [endpointId, org.id],
    );
    for (const [i, state] of ["delivered", "failed", "pending"].entries()) {
      const eventId = newId("evt");
      await t.database.pool.query(
        `insert into webhook_events (id, org_id, sequence, type, data, created_at)
         values ($1, $2, $3, 'organization.updated', '{}', now())`,
        [eventId, org.id, 1000 + i],
      );
      await t.database.pool.query(
        `insert into webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, state, attempts,
           last_attempt_at, created_at)
         values ($1, $2, $3, $4, 'organization.updated', $5, 1, now(), now())`,
        [newId("whd"), org.id, endpointId, eventId, state],
      );
    }

    const figures = await store().readFigures([org.id, other.id, "org_does_not_exist"], new Date());
    expect(figures.map((f) => f.orgId).sort()).toEqual([org.id, other.id].sort());
    const mine = figures.find((f) => f.orgId === org.id);
    const usage = new Map(mine?.usage.map((u) => [u.project, u.value]));
    // 20 projects, the organization's own row and _other.
    expect(usage.size).toBe(MAX_PROJECTS_PER_ORG + 2);
    expect(usage.get("")).toBe(7);
    expect(usage.get(OTHER_PROJECTS)).toBe(1 + 2);
    expect(usage.get(projects[MAX_PROJECTS_PER_ORG + 1] ?? "")).toBe(MAX_PROJECTS_PER_ORG + 2);
    expect(usage.has(projects[0] ?? "")).toBe(false);
    // Free plan: 1,000 credits a month, 1 credit per document.
    const documents = 7 + ((MAX_PROJECTS_PER_ORG + 2) * (MAX_PROJECTS_PER_ORG + 3)) / 2;
    expect(mine?.credits).toEqual({ balance: 1000 - documents, periodUsed: documents });
    // One live key of the free plan's two.
    expect(mine?.quotas).toEqual([{ quota: "api_keys", used: 1, limit: 2 }]);
    expect(mine?.webhooks).toEqual({ delivered: 1, failed: 1 });
    const theirs = figures.find((f) => f.orgId === other.id);
    expect(theirs?.usage).toEqual([{ meter: "documents", project: "", value: 1000 }]);
    expect(theirs?.webhooks).toEqual({ delivered: 0, failed: 0 });
  });

  it("reads each organization's quotas from its current plan, on a store that already read another plan's", async () => {
    // One store for both reads: it keeps the quotas of the plan versions it has read (they never change).
    const figuresStore = store();
    const { org } = await t.createOrgWithKey();
    const { org: other } = await t.createOrgWithKey();
    await t.setPlan(other.id, "team");
    const before = await figuresStore.readFigures([org.id, other.id], new Date());
    const quotasOf = (figures: OrgFigures[], orgId: string) => figures.find((f) => f.orgId === orgId)?.quotas;
    expect(quotasOf(before, org.id)).toEqual([{ quota: "api_keys", used: 1, limit: 2 }]);
    expect(quotasOf(before, other.id)).toEqual([{ quota: "api_keys", used: 1, limit: 50 }]);

    await t.setPlan(org.id, "pro");
    const after = await figuresStore.readFigures([org.id, other.id], new Date());
    expect(quotasOf(after, org.id)).toEqual([{ quota: "api_keys", used: 1, limit: 10 }]);
    expect(quotasOf(after, other.id)).toEqual([{ quota: "api_keys", used: 1, limit: 50 }]);
  });

  describe("remote-write pushes", () => {
    let exporter: MetricsExporter;
    const client = createOutboundClient({ allowPrivate: true });

    beforeAll(() => {
      exporter = createMetricsExporter({
        metrics: t.services.orgMetrics,
        integrations: t.services.integrations,
        client,
        lease: createExportLease(t.database.pool, () => {}),
        clock: systemClock,
        logger,
        intervalSeconds: 15,
      });
    });
    afterAll(async () => {
      await exporter?.stop();
      client.close();
    });

    /** An exporter on `clock` whose figures are another process's to push: its pushes carry its counters alone. */
    function countersOnlyExporter(
      clock: Clock,
      metrics: OrgMetrics = t.services.orgMetrics,
    ): MetricsExporter {
      return createMetricsExporter({
        metrics,
        integrations: t.services.integrations,
        client,
        lease: { acquire: async () => false, release: async () => {} },
        clock,
        logger,
        intervalSeconds: 15,
      });
    }

    it("pushes each configured organization its own series, with basic auth and the protocol's headers", async () => {
      const a = await t.createOrgWithKey();
      const b = await t.createOrgWithKey();
      const silent = await t.createOrgWithKey();
      const tokenA = `tok-a-${newId("key")}`;
      const tokenB = `tok-b-${newId("key")}`;
      await t.services.integrations.put(t.operatorCtx, a.org.id, {
        prometheus: { endpoint: receiver.url("/a"), id: "tenant-a", token: tokenA },
      });
      await t.services.integrations.put(t.operatorCtx, b.org.id, {
        prometheus: { endpoint: receiver.url("/fail"), id: "tenant-b", token: tokenB },
      });
      for (const { key } of [a, a, a, b, silent]) {
        const res = await t.request("POST", "/v1/authorize", { body: { key, category: "search" } });
        expectStatus(res, 200);
      }

      const results = await exporter.exportOnce();
      const ofA = results.find((r) => r.orgId === a.org.id);
      const ofB = results.find((r) => r.orgId === b.org.id);
      expect(ofA).toMatchObject({ ok: true, error: null, droppedBatches: 0 });
      expect(ofB).toMatchObject({ ok: false, droppedBatches: 1 });
      expect(ofB?.error).toContain("HTTP 500");
      expect(ofB?.error).not.toContain(tokenB);
      expect(ofB?.error).toContain("[redacted]");
      expect(results.some((r) => r.orgId === silent.org.id)).toBe(false);

      const [hit] = receiver.hits("/a");
      expect(hit?.headers.authorization).toBe(
        `Basic ${Buffer.from(`tenant-a:${tokenA}`).toString("base64")}`,
      );
      expect(hit?.headers["content-type"]).toBe("application/x-protobuf");
      expect(hit?.headers["content-encoding"]).toBe("snappy");
      expect(hit?.headers["x-prometheus-remote-write-version"]).toBe("0.1.0");
      const series = decodeBody(hit?.body ?? Buffer.alloc(0));
      // Only organization A's series, every one labelled with it.
      expect(series.every((s) => s.labels.some(([n, v]) => n === "org_id" && v === a.org.id))).toBe(true);
      const decisions = series.filter((s) =>
        s.labels.some(([n, v]) => n === "__name__" && v === "orgplane_authorize_decisions_total"),
      );
      expect(decisions.map((s) => [Object.fromEntries(s.labels).outcome, s.samples[0]?.value])).toEqual([
        ["allowed", 3],
      ]);
      expect(Object.fromEntries(decisions[0]?.labels ?? []).instance).toBe(t.services.orgMetrics.instance);
      // Database figures come along (this process holds the export lease): one live key of the free plan's two.
      const quota = series.find((s) =>
        s.labels.some(([n, v]) => n === "__name__" && v === "orgplane_quota_utilization"),
      );
      expect(quota?.labels).toContainEqual(["quota", "api_keys"]);
      expect(quota?.samples[0]?.value).toBe(0.5);

      // The failure is on the integration's status, without the token anywhere.
      const status = await t.services.integrations.get(b.org.id);
      expect(JSON.stringify(status)).not.toContain(tokenB);
      expect(logLines.join("")).not.toContain(tokenB);
    });

    it("backs off from an endpoint that keeps failing, counting every interval it misses", async () => {
      const { org, key } = await t.createOrgWithKey();
      await t.services.integrations.put(t.operatorCtx, org.id, {
        prometheus: { endpoint: receiver.url("/fail-backoff"), id: "x", token: "tok-backoff-0001" },
      });
      expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
      const attempts: number[] = [];
      const dropped: number[] = [];
      // Failures 1 and 2 are pushed in the next interval; after the second the endpoint sits one out.
      for (let i = 0; i < 3; i++) {
        const results = await exporter.exportOnce();
        attempts.push(receiver.hits("/fail-backoff").length);
        dropped.push(results.find((r) => r.orgId === org.id)?.droppedBatches ?? -1);
      }
      expect(attempts).toEqual([1, 2, 2]);
      expect(dropped).toEqual([1, 1, 1]);
      const status = await t.request<{ prometheus: { dropped_batches: number; last_error: string } }>(
        "GET",
        `/v1/organizations/${org.id}/integrations`,
      );
      expect(status.body.prometheus.dropped_batches).toBe(3);
      expect(status.body.prometheus.last_error).toContain("HTTP 500");
      expect(status.text).not.toContain("tok-backoff-0001");
    });

    it("pushes an organization whose series did not change again once a minute", async () => {
      const clock = createManualClock();
      const quiet = createMetricsExporter({
        metrics: t.services.orgMetrics,
        integrations: t.services.integrations,
        client,
        lease: createExportLease(t.database.pool, () => {}),
        clock,
        logger,
        intervalSeconds: 15,
      });
      const { org, key } = await t.createOrgWithKey();
      await t.services.integrations.put(t.operatorCtx, org.id, {
        prometheus: { endpoint: receiver.url("/quiet"), id: "q", token: "tok-quiet-0001" },
      });
      const pushes = () => receiver.hits("/quiet").length;
      const interval = async () => {
        clock.advance(15_000);
        await quiet.exportOnce();
        return pushes();
      };
      expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
      expect(await interval()).toBe(1);
      // No traffic and the same figures: the same values go again within a minute (in the interval of the
      // minute that is the organization's own, so a whole fleet does not come back at once)…
      let waited = 0;
      while ((await interval()) === 1 && waited < 4) {
        waited += 1;
      }
      expect(pushes()).toBe(2);
      // …and from then on once a minute: nothing for 45 s, then the same values again.
      expect(await interval()).toBe(2);
      expect(await interval()).toBe(2);
      expect(await interval()).toBe(2);
      expect(await interval()).toBe(3);
      // New traffic is pushed at the next interval.
      expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
      expect(await interval()).toBe(4);
      await quiet.stop();
    });

    it("builds no samples for an organization whose counters did not move until its resend is due", async () => {
      const clock = createManualClock();
      const { org, key } = await t.createOrgWithKey();
      const registry = t.services.orgMetrics;
      let built = 0;
      // The same registry, counting the samples built for this organization.
      const lazy = countersOnlyExporter(clock, {
        ...registry,
        samples(orgId, figures, includeOpenWindow) {
          if (orgId === org.id) {
            built += 1;
          }
          return registry.samples(orgId, figures, includeOpenWindow);
        },
      });
      await t.services.integrations.put(t.operatorCtx, org.id, {
        prometheus: { endpoint: receiver.url("/lazy"), id: "l", token: "tok-lazy-0001" },
      });
      const interval = async () => {
        clock.advance(15_000);
        await lazy.exportOnce();
        return { pushes: receiver.hits("/lazy").length, built };
      };
      expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
      expect(await interval()).toEqual({ pushes: 1, built: 1 });
      // Until the first resend (within a minute), then three quiet intervals: once the closed utilisation
      // window has emptied, an interval that pushes nothing builds nothing either.
      let last = await interval();
      for (let i = 0; i < 5 && last.pushes === 1; i++) {
        last = await interval();
      }
      expect(last.pushes).toBe(2);
      const quiet = [await interval(), await interval(), await interval()];
      expect(quiet).toEqual([last, last, last]);
      // The resend a minute after the last push: built once, sent once.
      expect(await interval()).toEqual({ pushes: 3, built: last.built + 1 });
      // New traffic moves the counters: built and pushed at the next interval.
      expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
      expect(await interval()).toEqual({ pushes: 4, built: last.built + 2 });
      await lazy.stop();
    });

    it("resends each unchanged organization in the interval of the minute its place names, whatever its offset", async () => {
      const clock = createManualClock();
      const fleet = countersOnlyExporter(clock);
      const orgIds: string[] = [];
      for (let i = 0; i < 16; i++) {
        const { org, key } = await t.createOrgWithKey();
        await t.services.integrations.put(t.operatorCtx, org.id, {
          prometheus: { endpoint: receiver.url(`/fleet-${i}`), id: "f", token: `tok-fleet-${i}-0001` },
        });
        expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
        orgIds.push(org.id);
      }
      const pushes = () => orgIds.map((_, i) => receiver.hits(`/fleet-${i}`).length);
      // Interval 0 pushes every org (this exporter's first), interval 1 those whose closed utilisation window
      // emptied; from interval 2 on nothing changes.
      for (let i = 0; i < 2; i++) {
        clock.advance(15_000);
        await fleet.exportOnce();
      }
      expect(pushes().every((n) => n >= 1)).toBe(true);
      // Intervals 2 to 9, two minutes with nothing new: each org is resent once a minute, in the interval its
      // place names (independent of its offset within the interval, so an interval's resends are spread over
      // all of it, and a fleet pushed together at a start does not come back together).
      const resentIn: number[][] = orgIds.map(() => []);
      for (let interval = 2; interval < 10; interval++) {
        const before = pushes();
        clock.advance(15_000);
        await fleet.exportOnce();
        pushes().forEach((n, i) => {
          if (n > (before[i] ?? 0)) {
            resentIn[i]?.push(interval);
          }
        });
      }
      expect(resentIn).toEqual(
        orgIds.map((orgId) => {
          const slot = placeOf(orgId, 4).resendSlot;
          return [2, 3, 4, 5, 6, 7, 8, 9].filter((k) => (k + slot) % 4 === 0);
        }),
      );
      // The 16 orgs do not all share one slot (each slot is 1 in 4).
      expect(new Set(orgIds.map((orgId) => placeOf(orgId, 4).resendSlot)).size).toBeGreaterThan(1);
      await fleet.stop();
    });

    it("lets one process at a time export the database figures", async () => {
      const first = createExportLease(t.database.pool, () => {});
      const second = createExportLease(t.database.pool, () => {});
      // The exporter above holds the lease already (its intervals read figures): neither of these gets it.
      expect(await first.acquire()).toBe(false);
      await exporter.stop();
      expect(await first.acquire()).toBe(true);
      expect(await first.acquire()).toBe(true);
      expect(await second.acquire()).toBe(false);
      await first.release();
      expect(await second.acquire()).toBe(true);
      await second.release();
    });

    it("tests a configuration with one sample", async () => {
      const { org } = await t.createOrgWithKey();
      const config = {
        orgId: org.id,
        kind: "prometheus" as const,
        endpoint: receiver.url("/probe"),
        id: "p",
        token: "tok-probe-1234",
        tokenLast4: "1234",
        createdAt: new Date(),
        updatedAt: new Date(),
      };
      const outcome = await exporter.probe(config);
      expect(outcome).toMatchObject({ ok: true, status: 204, error: null });
      const [hit] = receiver.hits("/probe");
      expect(decodeBody(hit?.body ?? Buffer.alloc(0))).toEqual([
        {
          labels: [
            ["__name__", "orgplane_integration_test"],
            ["org_id", org.id],
          ],
          samples: [{ value: 1, timestampMs: expect.any(Number) }],
        },
      ]);
      const refused = await exporter.probe({ ...config, endpoint: receiver.url("/fail") });
      expect(refused).toMatchObject({ ok: false, status: 500 });
      expect(refused.error).not.toContain("tok-probe-1234");
    });
  });

  describe("GET /v1/organizations/{org_id}/metrics", () => {
    it("answers the organization's series in the text format to a key with usage:read", async () => {
      const { org, key } = await t.createOrgWithKey();
      const { key: otherKey } = await t.createOrgWithKey();
      for (let i = 0; i < 3; i++) {
        expectStatus(await t.request("GET", "/v1/organization", { key }), 200);
      }
      // Reading the credits opens the account with the free plan's 1,000 (a fourth metadata request; the
      // scrape below is the fifth, counted before it answers).
      expectStatus(await t.request("GET", `/v1/organizations/${org.id}/credits`, { key }), 200);
      expectStatus(await t.request("POST", "/v1/authorize", { body: { key, category: "search" } }), 200);
      expectStatus(
        await t.request("POST", "/v1/authorize", { body: { key: otherKey, category: "search" } }),
        200,
      );

      const res = await t.request("GET", `/v1/organizations/${org.id}/metrics`, { key });
      expectStatus(res, 200);
      expect(res.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      const instance = t.services.orgMetrics.instance;
      expect(res.text).toContain(
        `orgplane_requests_total{org_id="${org.id}",instance="${instance}",category="metadata",outcome="allowed"} 5`,
      );
      expect(res.text).toContain(
        `orgplane_authorize_decisions_total{org_id="${org.id}",instance="${instance}",category="search",outcome="allowed"} 1`,
      );
      expect(res.text).toContain(`orgplane_credits_balance{org_id="${org.id}"} 1000`);
      expect(res.text).toContain(`orgplane_quota_utilization{org_id="${org.id}",quota="api_keys"} 0.5`);
      // Every sample line is this organization's.
      const samples = res.text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
      expect(samples.length).toBeGreaterThan(0);
      expect(samples.every((l) => l.includes(`org_id="${org.id}"`))).toBe(true);
    });

    it("refuses a key without usage:read, and another organization's id is a 404", async () => {
      const { org } = await t.createOrgWithKey();
      const other = await t.createOrgWithKey();
      const narrow = await t.createKey(org.id, ["orgs:read"]);
      expectStatus(await t.request("GET", `/v1/organizations/${org.id}/metrics`, { key: narrow }), 403);
      expectStatus(await t.request("GET", `/v1/organizations/${org.id}/metrics`, { key: other.key }), 404);
      expectStatus(await t.request("GET", "/v1/organizations/org_01jd0v4n6qf9yb5c8h2m3k7x1z/metrics"), 404);
      expectStatus(await t.request("GET", "/v1/organizations/not-an-id/metrics"), 404);
      expectStatus(await t.request("GET", `/v1/organizations/${org.id}/metrics`, { key: undefined }), 401);
    });
  });
});
