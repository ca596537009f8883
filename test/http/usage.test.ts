import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Scope } from "../../src/domain/auth/principal.ts";
import type {
  Catalog,
  CatalogMeter,
  MeterAggregation,
  PlanDefinition,
} from "../../src/domain/catalog/catalog.types.ts";
import {
  createManualClock,
  createSecondApp,
  createTestContext,
  expectStatus,
  type ListBody,
  type ManualClock,
  type SecondApp,
  type TestContext,
  type TestResponse,
  uniqueName,
} from "../harness.ts";
import { testCatalog, testPlan } from "../plans.ts";
import { mulberry32 } from "../util.ts";

/**
 * Usage metering (issue 7): POST /v1/usage/events, GET /v1/organizations/{org_id}/usage and
 * POST /v1/organizations/{org_id}/quotas/{quota}/check, in process on a real PostgreSQL. The harness clock
 * is fixed and moved by hand: event times, the late window and the billing period are all relative to it.
 */

// ---------------------------------------------------------------------------------------------------------
// Wire types (the contract's shapes).

type Property = string | number | boolean | null;
type EventData = { value?: number | string; key_id?: string; [property: string]: Property | undefined };
type UsageEvent = { id: string; type: string; subject?: string; time: string; data?: EventData };
type Outcome = {
  index: number;
  id: string;
  status: "duplicate" | "rejected";
  reason: string;
  detail: string;
};
type IngestBody = {
  accepted: number;
  duplicates: number;
  rejected: number;
  events: Outcome[];
  credits: { debited: string; balance: string } | null;
};
type Total = {
  meter: string;
  unit: string;
  aggregation: MeterAggregation;
  value: number;
  credits: string;
  cost: string | null;
  benchmark_cost: string | null;
  savings: string | null;
};
type SeriesPoint = {
  start: string;
  meter: string;
  project_id?: string | null;
  key_id?: string | null;
  value: number;
  credits: string;
};
type UsageProjectRow = {
  project_id: string | null;
  name: string | null;
  state: "active" | "archived" | null;
  meters: Record<string, number>;
};
type UsageBody = {
  org_id: string;
  from: string;
  to: string;
  granularity: "hour" | "day" | "month";
  group_by: string[];
  period: { start: string; end: string } | null;
  currency: string;
  totals: Total[];
  series: SeriesPoint[];
  projects: UsageProjectRow[];
  summary: Record<string, unknown>;
};
type QuotaCheck = {
  allowed: boolean;
  quota: string;
  limit: number | null;
  current: number;
  requested: number;
  remaining: number | null;
};
type QuotaRow = { quota: string; limit: number | null; current: number; source: string };
type Problem = {
  code: string;
  status: number;
  detail?: string;
  errors?: { path: string; message: string }[];
};
type CreditsBody = { balance: string; period: { start: string; end: string; used: string } };
type Transaction = { id: string; type: string; amount: string; source: string | null };

// ---------------------------------------------------------------------------------------------------------
// The catalog: one meter per aggregation, a credit-costed one, a priced one with a benchmark, and meters
// that count against quotas (in the plan and not).

function meter(key: string, aggregation: MeterAggregation, fields: Partial<CatalogMeter> = {}): CatalogMeter {
  return {
    key,
    unit: "unit",
    description: `${key} (test)`,
    aggregation,
    costPerUnit: null,
    benchmarkCostPerUnit: null,
    quota: null,
    ...fields,
  };
}

const SMALL: PlanDefinition = testPlan("small", {
  monthlyCredits: "100",
  quotas: {
    members: 5,
    projects: 3,
    api_keys: 20,
    invitations: 5,
    documents: 100,
    storage_bytes: 1000,
    monthly_active_users: 3,
    jobs: 5,
    datasets: 10,
  },
});

const catalog: Catalog = testCatalog([SMALL, testPlan("large", { monthlyCredits: "1000" })], {
  meters: [
    meter("api_calls", "sum", { unit: "request" }),
    meter("tokens", "sum", { unit: "token", costPerUnit: "0.000002", benchmarkCostPerUnit: "0.00001" }),
    meter("jobs", "count", { unit: "job", quota: "jobs" }),
    meter("peak_connections", "max", { unit: "connection", quota: "connections" }),
    meter("storage_bytes", "last", { unit: "byte", quota: "storage_bytes" }),
    meter("active_users", "unique_count", { unit: "user", quota: "monthly_active_users" }),
    meter("documents", "sum", { unit: "document", quota: "documents" }),
  ],
  creditCosts: { api_calls: "0.5" },
  usageCurrency: "usd",
});

// ---------------------------------------------------------------------------------------------------------

const HOUR = 60 * 60 * 1000;
const MINUTE = 60 * 1000;
const DAY = 24 * HOUR;
/** The harness clock's start; every test begins here (beforeEach). */
const NOW = new Date("2031-02-03T12:30:00.000Z");

let t: TestContext;
let clock: ManualClock;
let second: SecondApp;

beforeAll(async () => {
  clock = createManualClock(NOW);
  t = await createTestContext({ clock, catalog });
  second = createSecondApp(t, { clock });
});
afterAll(async () => {
  await second?.close();
  await t?.close();
});
beforeEach(() => {
  clock.set(NOW);
});

/** An ISO time `ms` from the harness clock's now. */
function fromNow(ms: number): string {
  return new Date(clock.now().getTime() + ms).toISOString();
}

function iso(s: string): string {
  return new Date(s).toISOString();
}

/** Exact decimals compared without caring for trailing zeros ("8.50" is "8.5"). */
function dec(value: string | null | undefined): string | null | undefined {
  if (value === null || value === undefined || !/^-?\d+(\.\d+)?$/.test(value)) {
    return value;
  }
  const [int = "0", frac = ""] = value.split(".");
  const f = frac.replace(/0+$/, "");
  const i = int.replace(/^(-?)0+(?=\d)/, "$1");
  return f === "" ? (i === "-0" ? "0" : i) : `${i}.${f}`;
}

type Sender = { key?: string; orgId?: string; via?: SecondApp };

/**
 * POST /v1/usage/events. With `key` (an org or project key, or a member token) the body has no org_id
 * unless `orgId` is also given; without it the operator sends, naming `orgId`.
 */
async function ingest(events: UsageEvent[], sender: Sender): Promise<TestResponse<IngestBody>> {
  const request = sender.via?.request ?? t.request;
  const body: Record<string, unknown> = { events };
  if (sender.orgId !== undefined) {
    body.org_id = sender.orgId;
  }
  return request<IngestBody>("POST", "/v1/usage/events", {
    ...(sender.key === undefined ? {} : { key: sender.key }),
    body,
  });
}

/** POST events that must all be accepted. */
async function ingestOk(events: UsageEvent[], sender: Sender): Promise<IngestBody> {
  const res = await ingest(events, sender);
  expectStatus(res, 200);
  expect(res.body, res.text).toMatchObject({
    accepted: events.length,
    duplicates: 0,
    rejected: 0,
    events: [],
  });
  return res.body;
}

async function usage(orgId: string, query = "", key?: string): Promise<TestResponse<UsageBody>> {
  return t.request<UsageBody>("GET", `/v1/organizations/${orgId}/usage${query === "" ? "" : `?${query}`}`, {
    ...(key === undefined ? {} : { key }),
  });
}

async function usageOk(orgId: string, query = "", key?: string): Promise<UsageBody> {
  const res = await usage(orgId, query, key);
  expectStatus(res, 200);
  return res.body;
}

function totalsOf(body: UsageBody): Record<string, Total> {
  return Object.fromEntries(body.totals.map((x) => [x.meter, x]));
}

function totalValue(body: UsageBody, meterKey: string): number | undefined {
  return totalsOf(body)[meterKey]?.value;
}

/** The series of one meter as `start[|project or key]` → value, zero buckets left out. */
function seriesOf(
  body: UsageBody,
  meterKey: string,
  dimension?: "project_id" | "key_id",
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of body.series) {
    if (p.meter !== meterKey || p.value === 0) {
      continue;
    }
    const label = dimension === undefined ? iso(p.start) : `${iso(p.start)}|${p[dimension] ?? "null"}`;
    out[label] = (out[label] ?? 0) + p.value;
  }
  return out;
}

async function createProject(orgId: string, name = uniqueName("prj")): Promise<string> {
  const res = await t.request<{ id: string }>("POST", `/v1/organizations/${orgId}/projects`, {
    body: { name },
  });
  expectStatus(res, 201);
  return res.body.id;
}

/** A key created through the API, so its id is known too. */
async function createApiKey(
  orgId: string,
  fields: { project_id?: string; scopes?: Scope[] } = {},
): Promise<{ id: string; key: string }> {
  const res = await t.request<{ id: string; key: string }>("POST", `/v1/organizations/${orgId}/api-keys`, {
    body: { name: uniqueName("key"), ...fields },
  });
  expectStatus(res, 201);
  return { id: res.body.id, key: res.body.key };
}

async function credits(orgId: string): Promise<CreditsBody> {
  const res = await t.request<CreditsBody>("GET", `/v1/organizations/${orgId}/credits`);
  expectStatus(res, 200);
  return res.body;
}

async function debits(orgId: string): Promise<Transaction[]> {
  const res = await t.request<ListBody<Transaction>>(
    "GET",
    `/v1/organizations/${orgId}/credits/transactions?limit=100`,
  );
  expectStatus(res, 200);
  return res.body.data.filter((e) => e.type === "debit");
}

async function quotaCheck(orgId: string, quota: string, body?: unknown, key?: string) {
  return t.request<QuotaCheck & Problem>("POST", `/v1/organizations/${orgId}/quotas/${quota}/check`, {
    ...(body === undefined ? {} : { body }),
    ...(key === undefined ? {} : { key }),
  });
}

async function quotaList(orgId: string): Promise<Record<string, QuotaRow>> {
  const res = await t.request<ListBody<QuotaRow>>("GET", `/v1/organizations/${orgId}/quotas`);
  expectStatus(res, 200);
  return Object.fromEntries(res.body.data.map((q) => [q.quota, q]));
}

function ev(id: string, type: string, time: string, data?: EventData, subject?: string): UsageEvent {
  return {
    id,
    type,
    time,
    ...(data === undefined ? {} : { data }),
    ...(subject === undefined ? {} : { subject }),
  };
}

function reasonsOf(body: IngestBody): Record<number, string> {
  return Object.fromEntries(
    body.events.map((o) => [o.index, o.status === "duplicate" ? "duplicate" : o.reason]),
  );
}

/** A malformed batch, a bad query and the operator's missing org_id: 400, as validation_failed is everywhere. */
const INVALID = 400;

const UNKNOWN_PROJECT = "prj_01jd0v4n6qf9yb5c8h2m3k7x1z";
const UNKNOWN_KEY = "key_01jd0v4n6qf9yb5c8h2m3k7x1z";
const UNKNOWN_ORG = "org_01jd0v4n6qf9yb5c8h2m3k7x1z";

// =========================================================================================================

describe("POST /v1/usage/events: malformed bodies", () => {
  it("answers 422 validation_failed (RFC 9457) and stores nothing, not even the batch's valid events", async () => {
    const { org, key } = await t.createOrgWithKey();
    const good = (id: string) => ev(id, "api_calls", fromNow(-MINUTE), { value: 1 });
    const malformed: { label: string; body?: unknown; raw?: string }[] = [
      { label: "not JSON", raw: '{"events": [' },
      { label: "no events", body: {} },
      { label: "events not an array", body: { events: good("g-obj") } },
      { label: "zero events", body: { events: [] } },
      {
        label: "1001 events",
        body: { events: Array.from({ length: 1001 }, (_, i) => good(`g-many-${i}`)) },
      },
      { label: "missing id", body: { events: [good("g-1"), { type: "api_calls", time: fromNow(0) }] } },
      { label: "empty id", body: { events: [good("g-2"), ev("", "api_calls", fromNow(0))] } },
      {
        label: "id of 201 chars",
        body: { events: [good("g-3"), ev("x".repeat(201), "api_calls", fromNow(0))] },
      },
      {
        label: "id not a string",
        body: { events: [good("g-4"), { id: 7, type: "api_calls", time: fromNow(0) }] },
      },
      { label: "missing type", body: { events: [good("g-5"), { id: "t-1", time: fromNow(0) }] } },
      { label: "missing time", body: { events: [good("g-6"), { id: "t-2", type: "api_calls" }] } },
      {
        label: "time without offset",
        body: { events: [good("g-7"), ev("t-3", "api_calls", "2031-02-03T12:00:00")] },
      },
      {
        label: "time not a date",
        body: { events: [good("g-8"), ev("t-4", "api_calls", "yesterday at noon")] },
      },
      {
        label: "time not RFC 3339 (space)",
        body: { events: [good("g-9"), ev("t-5", "api_calls", "2031-02-03 12:00:00Z")] },
      },
      {
        label: "time impossible",
        body: { events: [good("g-10"), ev("t-6", "api_calls", "2031-02-30T12:00:00Z")] },
      },
      {
        label: "value a boolean",
        body: {
          events: [good("g-11"), { id: "t-7", type: "api_calls", time: fromNow(0), data: { value: true } }],
        },
      },
      {
        label: "value an object",
        body: {
          events: [good("g-12"), { id: "t-8", type: "api_calls", time: fromNow(0), data: { value: {} } }],
        },
      },
      {
        label: "data an array",
        body: { events: [good("g-14"), { id: "t-10", type: "api_calls", time: fromNow(0), data: [1] }] },
      },
      {
        label: "data a string",
        body: { events: [good("g-15"), { id: "t-11", type: "api_calls", time: fromNow(0), data: "x" }] },
      },
      { label: "an event not an object", body: { events: [good("g-16"), "api_calls"] } },
    ];
    // Every case is tried and every mismatch reported together.
    const wrong: string[] = [];
    for (const m of malformed) {
      const res = await t.request<Problem>("POST", "/v1/usage/events", {
        key,
        ...(m.raw === undefined
          ? { body: m.body }
          : { rawBody: m.raw, headers: { "Content-Type": "application/json" } }),
      });
      const type = res.headers.get("content-type") ?? "";
      if (
        res.status !== INVALID ||
        !type.startsWith("application/problem+json") ||
        res.body.code !== (m.raw === undefined ? "validation_failed" : "malformed_json") ||
        res.body.status !== INVALID
      ) {
        wrong.push(`${m.label}: ${res.status} ${res.text.slice(0, 300)}`);
      }
    }
    expect(wrong, wrong.join("\n")).toEqual([]);

    // Nothing of any refused batch was stored: the valid events of those batches are new, totals were 0.
    const before = await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`);
    expect(totalValue(before, "api_calls")).toBe(0);
    const goods = ["g-1", "g-2", "g-5", "g-11", "g-13", "g-16", "g-many-0"].map(good);
    await ingestOk(goods, { key });
    const after = await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`);
    expect(totalValue(after, "api_calls")).toBe(goods.length);
  });

  it("accepts exactly 1000 events and ids of 200 characters", async () => {
    const { org, key } = await t.createOrgWithKey();
    const events = Array.from({ length: 1000 }, (_, i) =>
      ev(`${"i".repeat(190)}-${String(i).padStart(4, "0")}`, "jobs", fromNow(-MINUTE)),
    );
    expect(events[0]?.id.length).toBe(195);
    await ingestOk(events, { key });
    await ingestOk([ev("y".repeat(200), "jobs", fromNow(-MINUTE))], { key });
    expect(totalValue(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`), "jobs")).toBe(1001);
  });
});

describe("POST /v1/usage/events: who may send, and for which organization", () => {
  it("an org key sends for its own org (org_id optional, or equal); another org's id is a 404 and stores nothing", async () => {
    const { org, key } = await t.createOrgWithKey();
    const other = await t.createOrg();
    await ingestOk([ev("own-1", "jobs", fromNow(-MINUTE))], { key });
    await ingestOk([ev("own-2", "jobs", fromNow(-MINUTE))], { key, orgId: org.id });
    const foreign = await ingest([ev("own-3", "jobs", fromNow(-MINUTE))], { key, orgId: other.id });
    expectStatus(foreign, 404);
    const unknown = await ingest([ev("own-4", "jobs", fromNow(-MINUTE))], { key, orgId: UNKNOWN_ORG });
    expectStatus(unknown, 404);
    const range = `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`;
    expect(totalValue(await usageOk(other.id, range), "jobs")).toBe(0);
    expect(totalValue(await usageOk(org.id, range), "jobs")).toBe(2);
    // The refused event was not recorded under either organization: it is new for its own.
    await ingestOk([ev("own-3", "jobs", fromNow(-MINUTE))], { key });
  });

  it("the operator must name org_id (422 without it, 404 for an unknown org)", async () => {
    const org = await t.createOrg();
    const missing = await t.request<Problem>("POST", "/v1/usage/events", {
      body: { events: [ev("op-1", "jobs", fromNow(-MINUTE))] },
    });
    expectStatus(missing, INVALID);
    expect(missing.body.code).toBe("validation_failed");
    expectStatus(await ingest([ev("op-1", "jobs", fromNow(-MINUTE))], { orgId: UNKNOWN_ORG }), 404);
    await ingestOk([ev("op-1", "jobs", fromNow(-MINUTE))], { orgId: org.id });
    expect(totalValue(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`), "jobs")).toBe(1);
  });

  it("needs usage:write: a key without it and a viewer get 403; a member and a usage:write key send", async () => {
    const org = await t.createOrg();
    const readOnly = await t.createKey(org.id, ["usage:read"]);
    const refused = await ingest([ev("s-1", "jobs", fromNow(-MINUTE))], { key: readOnly });
    expectStatus(refused, 403);
    expect((refused.body as unknown as Problem).code).toBe("insufficient_scope");
    const viewer = await t.createMember(org.id, "viewer");
    expectStatus(await ingest([ev("s-2", "jobs", fromNow(-MINUTE))], { key: viewer.token }), 403);
    const member = await t.createMember(org.id, "member");
    await ingestOk([ev("s-3", "jobs", fromNow(-MINUTE))], { key: member.token });
    const writer = await t.createKey(org.id, ["usage:write"]);
    await ingestOk([ev("s-4", "jobs", fromNow(-MINUTE))], { key: writer });
    expect(totalValue(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`), "jobs")).toBe(2);
  });
});

describe("POST /v1/usage/events: dedup", () => {
  it("the same batch sent twice: accepted once, then every event a duplicate, totals unchanged", async () => {
    const { org, key } = await t.createOrgWithKey();
    const batch = [
      ev("d-1", "tokens", fromNow(-HOUR), { value: 1000 }),
      ev("d-2", "tokens", fromNow(-HOUR), { value: 500 }),
      ev("d-3", "jobs", fromNow(-HOUR)),
      ev("d-4", "active_users", fromNow(-HOUR), { value: "u-1" }),
    ];
    const first = await ingestOk(batch, { key });
    expect(first.credits === null || dec(first.credits.debited) === "0").toBe(true);
    const again = await ingest(batch, { key });
    expectStatus(again, 200);
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 4, rejected: 0 });
    expect(again.body.events.map((o) => [o.index, o.id, o.status])).toEqual([
      [0, "d-1", "duplicate"],
      [1, "d-2", "duplicate"],
      [2, "d-3", "duplicate"],
      [3, "d-4", "duplicate"],
    ]);
    // A batch mixing seen and new events: only the new ones count.
    const mixed = await ingest([...batch, ev("d-5", "tokens", fromNow(-HOUR), { value: 1 })], { key });
    expect(mixed.body).toMatchObject({ accepted: 1, duplicates: 4, rejected: 0 });
    const totals = totalsOf(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`));
    expect(totals.tokens?.value).toBe(1501);
    expect(totals.jobs?.value).toBe(1);
    expect(totals.active_users?.value).toBe(1);
  });

  it("an id repeated inside one batch: the first wins, the next are duplicates (reported by index)", async () => {
    const { org, key } = await t.createOrgWithKey();
    const res = await ingest(
      [
        ev("same", "tokens", fromNow(-HOUR), { value: 7 }),
        ev("other", "tokens", fromNow(-HOUR), { value: 1 }),
        ev("same", "tokens", fromNow(-HOUR), { value: 1000 }),
        ev("same", "jobs", fromNow(-HOUR)),
      ],
      { key },
    );
    expectStatus(res, 200);
    expect(res.body).toMatchObject({ accepted: 2, duplicates: 2, rejected: 0 });
    expect(res.body.events.map((o) => [o.index, o.id, o.status])).toEqual([
      [2, "same", "duplicate"],
      [3, "same", "duplicate"],
    ]);
    const totals = totalsOf(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`));
    expect(totals.tokens?.value).toBe(8);
    expect(totals.jobs?.value).toBe(0);
  });

  it("ids are per organization: another org may use the same ids", async () => {
    const a = await t.createOrgWithKey();
    const b = await t.createOrgWithKey();
    await ingestOk([ev("shared-id", "jobs", fromNow(-MINUTE))], { key: a.key });
    await ingestOk([ev("shared-id", "jobs", fromNow(-MINUTE))], { key: b.key });
  });

  it("10 concurrent senders of overlapping batches on two apps: every event counted exactly once", async () => {
    const { org, key } = await t.createOrgWithKey();
    expectStatus(
      await t.request("POST", `/v1/organizations/${org.id}/credits/grants`, {
        body: { amount: "10000", source: "purchase" },
      }),
      201,
    );
    const EVENTS = 300;
    // Even events are api_calls (0.5 credits a unit), odd ones jobs (count, no cost).
    const all = Array.from({ length: EVENTS }, (_, i) =>
      i % 2 === 0
        ? ev(`c-${String(i).padStart(3, "0")}`, "api_calls", fromNow(-2 * HOUR + i * 1000), {
            value: (i % 5) + 1,
          })
        : ev(`c-${String(i).padStart(3, "0")}`, "jobs", fromNow(-2 * HOUR + i * 1000)),
    );
    const expectedCalls = all.filter((_, i) => i % 2 === 0).reduce((s, _, j) => s + (((j * 2) % 5) + 1), 0);
    const random = mulberry32(7);
    // Sender k covers events [27k, 27k + 80): neighbours overlap by 53 events; in batches of 20, shuffled.
    const plans: UsageEvent[][][] = Array.from({ length: 10 }, (_, k) => {
      const mine = all.slice(k * 27, Math.min(EVENTS, k * 27 + 80));
      for (let i = mine.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [mine[i], mine[j]] = [mine[j] as UsageEvent, mine[i] as UsageEvent];
      }
      const batches: UsageEvent[][] = [];
      for (let i = 0; i < mine.length; i += 20) {
        batches.push(mine.slice(i, i + 20));
      }
      return batches;
    });
    const sent = plans.flat(2).length;
    const results: { batch: UsageEvent[]; res: TestResponse<IngestBody> }[] = [];
    await Promise.all(
      plans.map(async (batches, k) => {
        for (const batch of batches) {
          const res = await ingest(batch, { key, ...(k % 2 === 0 ? {} : { via: second }) });
          results.push({ batch, res });
        }
      }),
    );
    const acceptedIds: string[] = [];
    let debited = 0;
    for (const { batch, res } of results) {
      expectStatus(res, 200);
      expect(res.body.rejected, res.text).toBe(0);
      expect(res.body.accepted + res.body.duplicates).toBe(batch.length);
      expect(res.body.events.every((o) => o.status === "duplicate")).toBe(true);
      expect(res.body.events).toHaveLength(res.body.duplicates);
      const notAccepted = new Set(res.body.events.map((o) => o.index));
      batch.forEach((e, i) => {
        if (!notAccepted.has(i)) {
          acceptedIds.push(e.id);
        }
      });
      debited += res.body.credits === null ? 0 : Number(res.body.credits.debited);
    }
    expect(results.reduce((s, r) => s + r.res.body.accepted, 0)).toBe(EVENTS);
    expect(results.reduce((s, r) => s + r.res.body.duplicates, 0)).toBe(sent - EVENTS);
    expect(acceptedIds).toHaveLength(EVENTS);
    expect(new Set(acceptedIds).size).toBe(EVENTS);

    const totals = totalsOf(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`));
    expect(totals.api_calls?.value).toBe(expectedCalls);
    expect(totals.jobs?.value).toBe(EVENTS / 2);
    expect(dec(totals.api_calls?.credits)).toBe(dec(String(expectedCalls / 2)));
    expect(debited).toBe(expectedCalls / 2);
    expect(dec((await credits(org.id)).balance)).toBe(dec(String(10100 - expectedCalls / 2)));
  });
});

describe("POST /v1/usage/events: per-event outcomes", () => {
  it("rejects each event for its reason and accepts the rest of the batch", async () => {
    const { org, key } = await t.createOrgWithKey();
    const project = await createProject(org.id);
    const deleted = await createProject(org.id);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/projects/${deleted}`), 200);
    const other = await t.createOrg();
    const otherProject = await createProject(other.id);
    const otherKey = await createApiKey(other.id);
    const ownKey = await createApiKey(org.id);
    const revoked = await createApiKey(org.id);
    expectStatus(await t.request("DELETE", `/v1/organizations/${org.id}/api-keys/${revoked.id}`), 200);

    const LATE = 168 * HOUR;
    const batch: UsageEvent[] = [
      /* 0 */ ev("r-ok-1", "api_calls", fromNow(-MINUTE), { value: 2 }),
      /* 1 */ ev("r-meter", "nope", fromNow(-MINUTE), { value: 1 }),
      /* 2 */ ev("r-subj-unknown", "api_calls", fromNow(-MINUTE), { value: 1 }, UNKNOWN_PROJECT),
      /* 3 */ ev("r-subj-foreign-prj", "api_calls", fromNow(-MINUTE), { value: 1 }, otherProject),
      /* 4 */ ev("r-subj-foreign-org", "api_calls", fromNow(-MINUTE), { value: 1 }, other.id),
      /* 5 */ ev("r-subj-deleted", "api_calls", fromNow(-MINUTE), { value: 1 }, deleted),
      /* 6 */ ev("r-key-unknown", "api_calls", fromNow(-MINUTE), { value: 1, key_id: UNKNOWN_KEY }),
      /* 7 */ ev("r-key-foreign", "api_calls", fromNow(-MINUTE), { value: 1, key_id: otherKey.id }),
      /* 8 */ ev("r-future", "api_calls", fromNow(5 * MINUTE + 1000), { value: 1 }),
      /* 9 */ ev("r-near-future", "api_calls", fromNow(4 * MINUTE), { value: 3 }),
      /* 10 */ ev("r-too-late", "api_calls", fromNow(-LATE - 1000), { value: 1 }),
      /* 11 */ ev("r-just-in-time", "api_calls", fromNow(-LATE + HOUR), { value: 5 }),
      /* 12 */ ev("r-negative", "api_calls", fromNow(-MINUTE), { value: -1 }),
      /* 13 */ ev("r-negative-decimal", "api_calls", fromNow(-MINUTE), { value: -0.5 }),
      /* 14 */ ev("r-unique-no-value", "active_users", fromNow(-MINUTE)),
      /* 15 */ ev("r-ok-1", "api_calls", fromNow(-MINUTE), { value: 100 }),
      /* 16 */ ev("r-own-project", "api_calls", fromNow(-MINUTE), { value: 7 }, project),
      /* 17 */ ev("r-own-org", "api_calls", fromNow(-MINUTE), { value: 11 }, org.id),
      /* 18 */ ev("r-own-key", "api_calls", fromNow(-MINUTE), { value: 13, key_id: ownKey.id }),
      /* 19 */ ev("r-revoked-key", "api_calls", fromNow(-MINUTE), { value: 17, key_id: revoked.id }),
      /* 20 */ ev("r-decimal", "api_calls", fromNow(-MINUTE), { value: "0.25" }),
      /* 21 */ ev("r-props", "api_calls", fromNow(-MINUTE), {
        value: 1.5,
        region: "eu",
        gpu: true,
        n: 3,
        x: null,
      }),
      /* 22 */ ev("r-zero", "api_calls", fromNow(-MINUTE), { value: 0 }),
      /* 23 */ ev("r-offset", "jobs", "2031-02-03T13:20:00+01:00"),
      // A string is a unique_count meter's value; for a sum meter it must be a decimal.
      /* 24 */ ev("r-not-decimal", "api_calls", fromNow(-MINUTE), { value: "ten" }),
    ];
    const res = await ingest(batch, { key });
    expectStatus(res, 200);
    expect(reasonsOf(res.body)).toEqual({
      1: "unknown_meter",
      2: "unknown_subject",
      3: "unknown_subject",
      4: "unknown_subject",
      5: "unknown_subject",
      6: "unknown_key",
      7: "unknown_key",
      8: "time_in_future",
      10: "too_late",
      12: "invalid_value",
      13: "invalid_value",
      14: "invalid_value",
      15: "duplicate",
      24: "invalid_value",
    });
    for (const o of res.body.events) {
      expect(o.id).toBe(batch[o.index]?.id);
      expect(o.status).toBe(o.index === 15 ? "duplicate" : "rejected");
      expect(typeof o.detail, JSON.stringify(o)).toBe("string");
      expect(o.detail.length).toBeGreaterThan(0);
    }
    expect(res.body).toMatchObject({ accepted: 11, duplicates: 1, rejected: 13 });

    const range = `from=${fromNow(-8 * DAY)}&to=${fromNow(HOUR)}`;
    const body = await usageOk(org.id, `${range}&group_by=project,key`);
    const calls = 2 + 3 + 5 + 7 + 11 + 13 + 17 + 0.25 + 1.5 + 0;
    expect(totalValue(body, "api_calls")).toBe(calls);
    expect(totalValue(body, "jobs")).toBe(1);
    expect(totalValue(body, "active_users")).toBe(0);
    // The project event went to the project; the rest to the org itself; key_id given or the sending key's.
    const byProject: Record<string, number> = {};
    const byKey: Record<string, number> = {};
    for (const p of body.series.filter((s) => s.meter === "api_calls")) {
      byProject[p.project_id ?? "org"] = (byProject[p.project_id ?? "org"] ?? 0) + p.value;
      byKey[p.key_id ?? "none"] = (byKey[p.key_id ?? "none"] ?? 0) + p.value;
    }
    expect(byProject).toEqual({ [project]: 7, org: calls - 7 });
    expect(byKey[ownKey.id]).toBe(13);
    expect(byKey[revoked.id]).toBe(17);
    expect(byKey.none).toBeUndefined();
  });

  it("a project key reports for its own project only; its events carry its key id", async () => {
    const org = await t.createOrg();
    const mine = await createProject(org.id);
    const sibling = await createProject(org.id);
    const projectKey = await createApiKey(org.id, { project_id: mine });
    const res = await ingest(
      [
        ev("p-1", "api_calls", fromNow(-MINUTE), { value: 1 }),
        ev("p-2", "api_calls", fromNow(-MINUTE), { value: 2 }, mine),
        ev("p-3", "api_calls", fromNow(-MINUTE), { value: 4 }, sibling),
        ev("p-4", "api_calls", fromNow(-MINUTE), { value: 8 }, UNKNOWN_PROJECT),
      ],
      { key: projectKey.key },
    );
    expectStatus(res, 200);
    expect(reasonsOf(res.body)).toEqual({ 2: "unknown_subject", 3: "unknown_subject" });
    expect(res.body).toMatchObject({ accepted: 2, rejected: 2, duplicates: 0 });
    const body = await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}&group_by=project,key`);
    const points = body.series.filter((p) => p.meter === "api_calls" && p.value !== 0);
    expect(points.map((p) => [p.project_id, p.key_id, p.value])).toEqual([[mine, projectKey.id, 3]]);
  });

  it("an archived project is still a subject; its usage row says archived", async () => {
    const { org, key } = await t.createOrgWithKey();
    const archived = await createProject(org.id, "old-app");
    expectStatus(
      await t.request("PATCH", `/v1/organizations/${org.id}/projects/${archived}`, {
        body: { state: "archived" },
      }),
      200,
    );
    await ingestOk([ev("arch-1", "api_calls", fromNow(-MINUTE), { value: 4 }, archived)], { key });
    const body = await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`);
    const row = body.projects.find((p) => p.project_id === archived);
    expect(row).toMatchObject({ name: "old-app", state: "archived" });
    expect(row?.meters.api_calls).toBe(4);
  });

  it("the late window and the 5-minute future limit follow the server clock", async () => {
    const { org, key } = await t.createOrgWithKey();
    const at = fromNow(0);
    // 10 minutes ahead of the clock: refused now, accepted once the clock has moved on.
    const ahead = fromNow(10 * MINUTE);
    const refused = await ingest([ev("clk-1", "jobs", ahead)], { key });
    expect(reasonsOf(refused.body)).toEqual({ 0: "time_in_future" });
    clock.advance(6 * MINUTE);
    await ingestOk([ev("clk-1", "jobs", ahead)], { key });
    // An event of `at` is in time for 168 hours, then too late.
    clock.set(new Date(new Date(at).getTime() + 167 * HOUR));
    await ingestOk([ev("clk-2", "jobs", at)], { key });
    clock.set(new Date(new Date(at).getTime() + 168 * HOUR + MINUTE));
    const late = await ingest([ev("clk-3", "jobs", at)], { key });
    expect(reasonsOf(late.body)).toEqual({ 0: "too_late" });
    // Sent again now, an acknowledged event is not counted twice (duplicate or too_late, never accepted).
    const again = await ingest([ev("clk-2", "jobs", at)], { key });
    expect(again.body.accepted).toBe(0);
    expect(totalValue(await usageOk(org.id, `from=${iso(at)}&to=${fromNow(HOUR)}`), "jobs")).toBe(2);
  });
});

describe("POST /v1/usage/events: credits", () => {
  it("debits a batch's credit cost once, with the events; a resend debits nothing", async () => {
    const { org, key } = await t.createOrgWithKey();
    const batch = [
      ev("cr-1", "api_calls", fromNow(-MINUTE), { value: 4 }),
      ev("cr-2", "api_calls", fromNow(-MINUTE), { value: "6" }),
      ev("cr-3", "tokens", fromNow(-MINUTE), { value: 1000 }),
    ];
    const first = await ingestOk(batch, { key });
    expect(first.credits).not.toBeNull();
    expect(dec(first.credits?.debited)).toBe("5");
    expect(dec(first.credits?.balance)).toBe("95");
    const again = await ingest(batch, { key });
    expect(again.body).toMatchObject({ accepted: 0, duplicates: 3 });
    if (again.body.credits !== null) {
      expect(dec(again.body.credits.debited)).toBe("0");
    }
    expect(dec((await credits(org.id)).balance)).toBe("95");
    const ledger = await debits(org.id);
    expect(ledger).toHaveLength(1);
    expect(dec(ledger[0]?.amount)).toBe("-5");
    const totals = totalsOf(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`));
    expect(dec(totals.api_calls?.credits)).toBe("5");
    expect(dec(totals.tokens?.credits)).toBe("0");
  });

  it("concurrent costed batches on an org whose credits were never touched: every batch accepted, debited once", async () => {
    const { org, key } = await t.createOrgWithKey();
    // No GET …/credits first: the credit account is created by the first debits, concurrently.
    const batches = Array.from({ length: 40 }, (_, b) =>
      Array.from({ length: 5 }, (_, i) => ev(`fresh-${b}-${i}`, "api_calls", fromNow(-MINUTE), { value: 1 })),
    );
    const results = await Promise.all(
      batches.map((batch, b) => ingest(batch, { key, ...(b % 2 === 0 ? {} : { via: second }) })),
    );
    for (const res of results) {
      expectStatus(res, 200);
      expect(res.body, res.text).toMatchObject({ accepted: 5, duplicates: 0, rejected: 0 });
    }
    // 200 units at 0.5 credits: exactly the plan's 100.
    expect(dec((await credits(org.id)).balance)).toBe("0");
    expect(await debits(org.id)).toHaveLength(40);
  });

  it("a batch the balance cannot cover rejects all its costed events (insufficient_credits) and accepts the others", async () => {
    const { org, key } = await t.createOrgWithKey();
    await ingestOk([ev("ic-0", "api_calls", fromNow(-MINUTE), { value: 10 })], { key });
    expect(dec((await credits(org.id)).balance)).toBe("95");
    // 50 + 50 credits: each alone would fit in 95, together they do not; the batch's costed events go together.
    const res = await ingest(
      [
        ev("ic-1", "api_calls", fromNow(-MINUTE), { value: 100 }),
        ev("ic-2", "tokens", fromNow(-MINUTE), { value: 9 }),
        ev("ic-3", "api_calls", fromNow(-MINUTE), { value: 100 }),
        ev("ic-4", "jobs", fromNow(-MINUTE)),
        ev("ic-0", "api_calls", fromNow(-MINUTE), { value: 10 }),
      ],
      { key },
    );
    expectStatus(res, 200);
    expect(reasonsOf(res.body)).toEqual({
      0: "insufficient_credits",
      2: "insufficient_credits",
      4: "duplicate",
    });
    expect(res.body).toMatchObject({ accepted: 2, rejected: 2, duplicates: 1 });
    expect(dec((await credits(org.id)).balance)).toBe("95");
    expect(await debits(org.id)).toHaveLength(1);
    const totals = totalsOf(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`));
    expect(totals.api_calls?.value).toBe(10);
    expect(totals.tokens?.value).toBe(9);
    expect(totals.jobs?.value).toBe(1);
    // The refused events were not recorded: sent again within the balance, they are accepted.
    const retry = await ingestOk([ev("ic-1", "api_calls", fromNow(-MINUTE), { value: 100 })], { key });
    expect(dec(retry.credits?.balance)).toBe("45");
    // Exactly the balance is enough.
    const last = await ingestOk([ev("ic-5", "api_calls", fromNow(-MINUTE), { value: 90 })], { key });
    expect(dec(last.credits?.balance)).toBe("0");
  });

  it("a hard spending limit: costed events past it are rejected (spending_limit_reached); once reached, 402", async () => {
    const { org, key } = await t.createOrgWithKey();
    const limits = await t.request("PUT", `/v1/organizations/${org.id}/spending-limits`, {
      body: { unit: "credits", hard_limit: "20", hard_limit_action: "block" },
    });
    expectStatus(limits, 200);
    const over = await ingest(
      [ev("sl-1", "api_calls", fromNow(-MINUTE), { value: 50 }), ev("sl-2", "jobs", fromNow(-MINUTE))],
      { key },
    );
    expectStatus(over, 200);
    expect(reasonsOf(over.body)).toEqual({ 0: "spending_limit_reached" });
    expect(over.body).toMatchObject({ accepted: 1, rejected: 1 });
    expect(dec((await credits(org.id)).balance)).toBe("100");
    // Exactly up to the limit: accepted, and the org is now blocked.
    await ingestOk([ev("sl-3", "api_calls", fromNow(-MINUTE), { value: 40 })], { key });
    expect(dec((await credits(org.id)).balance)).toBe("80");
    // (Past the one-second cache the process keeps of the block judgement.)
    clock.advance(2000);
    const blocked = await t.request<Problem>("POST", "/v1/usage/events", {
      key,
      body: { events: [ev("sl-4", "jobs", fromNow(-MINUTE))] },
    });
    expectStatus(blocked, 402);
    expect(blocked.body).toMatchObject({ code: "spending_limit_reached", status: 402 });
    // Nothing of the refused request was stored: once the limit is raised it is accepted.
    expectStatus(
      await t.request("PUT", `/v1/organizations/${org.id}/spending-limits`, {
        body: { unit: "credits", hard_limit: "1000" },
      }),
      200,
    );
    clock.advance(2000);
    await ingestOk([ev("sl-4", "jobs", fromNow(-MINUTE))], { key });
    expect(totalValue(await usageOk(org.id, `from=${fromNow(-DAY)}&to=${fromNow(HOUR)}`), "jobs")).toBe(2);
  });
});

// =========================================================================================================

describe("GET /v1/organizations/{org_id}/usage: aggregations", () => {
  /** One org with the same events for every aggregation test; the clock stays at NOW (Feb 3, 12:30). */
  let orgId: string;
  let prjA: string;
  let prjB: string;
  let keyA: { id: string; key: string };
  let keyB: { id: string; key: string };
  const D1 = "2031-02-01";
  const D2 = "2031-02-02";

  beforeAll(async () => {
    clock.set(NOW);
    const org = await t.createOrg();
    orgId = org.id;
    prjA = await createProject(orgId, "alpha");
    prjB = await createProject(orgId, "beta");
    keyA = await createApiKey(orgId);
    keyB = await createApiKey(orgId);
    const a = { key_id: keyA.id };
    const b = { key_id: keyB.id };
    const events: UsageEvent[] = [
      // sum
      ev("s-0", "api_calls", "2031-01-30T08:00:00Z", { value: 11, ...a }),
      ev("s-1", "api_calls", `${D1}T10:15:00Z`, { value: 2, ...a }, prjA),
      ev("s-2", "api_calls", `${D1}T10:45:00Z`, { value: 3, ...b }, prjB),
      ev("s-3", "api_calls", `${D1}T11:05:00Z`, { value: 5, ...b }, prjA),
      ev("s-4", "api_calls", `${D2}T09:00:00Z`, { value: 7, ...a }),
      // count (a value is ignored)
      ev("c-1", "jobs", `${D1}T10:20:00Z`, a, prjA),
      ev("c-2", "jobs", `${D1}T10:30:00Z`, { value: 5, ...a }, prjA),
      ev("c-3", "jobs", `${D2}T09:10:00Z`, b, prjB),
      // max
      ev("m-1", "peak_connections", `${D1}T10:10:00Z`, { value: 4, ...a }, prjA),
      ev("m-2", "peak_connections", `${D1}T11:10:00Z`, { value: 9, ...a }, prjB),
      ev("m-3", "peak_connections", `${D2}T09:30:00Z`, { value: 6, ...a }, prjA),
      // last, sent out of order: the latest by event time wins, per project, summed over projects
      ev("l-3", "storage_bytes", `${D2}T09:00:00Z`, { value: 120, ...a }, prjA),
      ev("l-2", "storage_bytes", `${D1}T11:00:00Z`, { value: 150, ...a }, prjA),
      ev("l-1", "storage_bytes", `${D1}T10:00:00Z`, { value: 100, ...a }, prjA),
      ev("l-4", "storage_bytes", `${D1}T10:30:00Z`, { value: 50, ...a }, prjB),
      // unique_count
      ev("u-1", "active_users", `${D1}T10:00:00Z`, { value: "u1", ...a }, prjA),
      ev("u-2", "active_users", `${D1}T10:40:00Z`, { value: "u2", ...a }, prjA),
      ev("u-3", "active_users", `${D1}T11:40:00Z`, { value: "u1", ...b }, prjB),
      ev("u-4", "active_users", `${D2}T09:00:00Z`, { value: "u2", ...a }, prjA),
      ev("u-5", "active_users", `${D2}T09:20:00Z`, { value: 3, ...a }, prjA),
      // priced with a benchmark
      ev("t-1", "tokens", `${D1}T10:00:00Z`, { value: 600000, ...a }, prjA),
      ev("t-2", "tokens", `${D2}T10:00:00Z`, { value: 400000, ...a }, prjB),
    ];
    // In two batches through both apps, to show rollups do not depend on batching.
    await ingestOk(events.slice(0, 12), { orgId });
    await ingestOk(events.slice(12), { orgId, via: second });
  });

  const dayRange = `from=${D1}T00:00:00Z&to=2031-02-03T00:00:00Z`;
  /** A label of seriesOf(…, dimension): the day's start and the project or key ("null": none). */
  const dayAnd = (day: string, who: string) => `${iso(`${day}T00:00:00Z`)}|${who}`;

  it("totals per meter: sum, count, max, last (latest per project, summed), unique_count", async () => {
    const body = await usageOk(orgId, `${dayRange}&granularity=day`);
    expect(body).toMatchObject({
      org_id: orgId,
      from: iso(`${D1}T00:00:00Z`),
      to: iso("2031-02-03T00:00:00Z"),
      granularity: "day",
      period: null,
      currency: "usd",
    });
    const totals = totalsOf(body);
    expect(Object.keys(totals).sort()).toEqual(catalog.meters.map((m) => m.key).sort());
    expect(totals.api_calls).toMatchObject({ unit: "request", aggregation: "sum", value: 17 });
    expect(dec(totals.api_calls?.credits)).toBe("8.5");
    expect(totals.api_calls).toMatchObject({ cost: null, benchmark_cost: null, savings: null });
    expect(totals.jobs).toMatchObject({ aggregation: "count", value: 3 });
    expect(totals.peak_connections).toMatchObject({ aggregation: "max", value: 9 });
    expect(totals.storage_bytes).toMatchObject({ aggregation: "last", value: 120 + 50 });
    expect(totals.active_users).toMatchObject({ aggregation: "unique_count", value: 3 });
    expect(totals.documents).toMatchObject({ value: 0 });
    expect(dec(totals.documents?.credits)).toBe("0");
    expect(totals.tokens?.value).toBe(1_000_000);
    expect(dec(totals.tokens?.cost)).toBe("2");
    expect(dec(totals.tokens?.benchmark_cost)).toBe("10");
    expect(dec(totals.tokens?.savings)).toBe("8");
  });

  it("series by day and by hour", async () => {
    const days = await usageOk(orgId, `${dayRange}&granularity=day`);
    const d = (day: string) => iso(`${day}T00:00:00Z`);
    expect(seriesOf(days, "api_calls")).toEqual({ [d(D1)]: 10, [d(D2)]: 7 });
    expect(seriesOf(days, "jobs")).toEqual({ [d(D1)]: 2, [d(D2)]: 1 });
    expect(seriesOf(days, "peak_connections")).toEqual({ [d(D1)]: 9, [d(D2)]: 6 });
    expect(seriesOf(days, "storage_bytes")).toEqual({ [d(D1)]: 150 + 50, [d(D2)]: 120 });
    expect(seriesOf(days, "active_users")).toEqual({ [d(D1)]: 2, [d(D2)]: 2 });
    const credit = days.series.find((p) => p.meter === "api_calls" && iso(p.start) === d(D1));
    expect(dec(credit?.credits)).toBe("5");

    const hours = await usageOk(orgId, `from=${D1}T10:00:00Z&to=${D2}T10:00:00Z&granularity=hour`);
    const h = (day: string, hour: number) => iso(`${day}T${String(hour).padStart(2, "0")}:00:00Z`);
    expect(hours.granularity).toBe("hour");
    expect(seriesOf(hours, "api_calls")).toEqual({ [h(D1, 10)]: 5, [h(D1, 11)]: 5, [h(D2, 9)]: 7 });
    expect(seriesOf(hours, "jobs")).toEqual({ [h(D1, 10)]: 2, [h(D2, 9)]: 1 });
    expect(seriesOf(hours, "peak_connections")).toEqual({ [h(D1, 10)]: 4, [h(D1, 11)]: 9, [h(D2, 9)]: 6 });
    expect(seriesOf(hours, "storage_bytes")).toEqual({
      [h(D1, 10)]: 100 + 50,
      [h(D1, 11)]: 150,
      [h(D2, 9)]: 120,
    });
    expect(seriesOf(hours, "active_users")).toEqual({ [h(D1, 10)]: 2, [h(D1, 11)]: 1, [h(D2, 9)]: 2 });
    // t-2 (D2 10:00) is outside [from, to).
    expect(totalValue(hours, "tokens")).toBe(600000);
  });

  it("series by month, and the default granularity is day", async () => {
    const months = await usageOk(
      orgId,
      "from=2031-01-01T00:00:00Z&to=2031-03-01T00:00:00Z&granularity=month",
    );
    expect(seriesOf(months, "api_calls")).toEqual({
      [iso("2031-01-01T00:00:00Z")]: 11,
      [iso("2031-02-01T00:00:00Z")]: 17,
    });
    expect(totalValue(months, "api_calls")).toBe(28);
    const byDefault = await usageOk(orgId, dayRange);
    expect(byDefault.granularity).toBe("day");
    expect(byDefault.group_by).not.toContain("project");
    expect(byDefault.group_by).not.toContain("key");
  });

  it("group_by project: series and the per-project table (null = the org's own events)", async () => {
    const body = await usageOk(orgId, `${dayRange}&group_by=project`);
    expect(body.group_by).toContain("project");
    expect(seriesOf(body, "api_calls", "project_id")).toEqual({
      [dayAnd(D1, prjA)]: 7,
      [dayAnd(D1, prjB)]: 3,
      [dayAnd(D2, "null")]: 7,
    });
    expect(seriesOf(body, "storage_bytes", "project_id")).toEqual({
      [dayAnd(D1, prjA)]: 150,
      [dayAnd(D1, prjB)]: 50,
      [dayAnd(D2, prjA)]: 120,
    });
    for (const p of body.series) {
      expect(p).toHaveProperty("project_id");
      expect(p).not.toHaveProperty("key_id");
    }
    const rows = Object.fromEntries(body.projects.map((p) => [p.project_id ?? "null", p]));
    expect(rows[prjA]).toMatchObject({ name: "alpha", state: "active" });
    expect(rows[prjA]?.meters).toMatchObject({
      api_calls: 7,
      jobs: 2,
      peak_connections: 6,
      storage_bytes: 120,
      active_users: 3,
      tokens: 600000,
    });
    expect(rows[prjB]).toMatchObject({ name: "beta", state: "active" });
    expect(rows[prjB]?.meters).toMatchObject({
      api_calls: 3,
      jobs: 1,
      peak_connections: 9,
      storage_bytes: 50,
    });
    expect(rows.null).toMatchObject({ name: null, state: null });
    expect(rows.null?.meters).toMatchObject({ api_calls: 7 });
  });

  it("group_by key, and project and key together", async () => {
    const body = await usageOk(orgId, `${dayRange}&group_by=key`);
    expect(seriesOf(body, "api_calls", "key_id")).toEqual({
      [dayAnd(D1, keyA.id)]: 2,
      [dayAnd(D1, keyB.id)]: 8,
      [dayAnd(D2, keyA.id)]: 7,
    });
    expect(seriesOf(body, "active_users", "key_id")).toEqual({
      [dayAnd(D1, keyA.id)]: 2,
      [dayAnd(D1, keyB.id)]: 1,
      [dayAnd(D2, keyA.id)]: 2,
    });
    for (const p of body.series) {
      expect(p).toHaveProperty("key_id");
      expect(p).not.toHaveProperty("project_id");
    }
    const both = await usageOk(orgId, `${dayRange}&group_by=project,key&meters=api_calls`);
    const rows = both.series
      .filter((p) => p.value !== 0)
      .map((p) => `${iso(p.start).slice(0, 10)} ${p.project_id ?? "-"} ${p.key_id ?? "-"} ${p.value}`)
      .sort();
    expect(rows).toEqual(
      [
        `${D1} ${prjA} ${keyA.id} 2`,
        `${D1} ${prjA} ${keyB.id} 5`,
        `${D1} ${prjB} ${keyB.id} 3`,
        `${D2} - ${keyA.id} 7`,
      ].sort(),
    );
  });

  it("meters= keeps only the named meters; an unknown meter is a 422", async () => {
    const body = await usageOk(orgId, `${dayRange}&meters=api_calls,jobs`);
    expect(body.totals.map((x) => x.meter).sort()).toEqual(["api_calls", "jobs"]);
    expect(new Set(body.series.map((p) => p.meter))).toEqual(new Set(["api_calls", "jobs"]));
    const unknown = await usage(orgId, `${dayRange}&meters=api_calls,nope`);
    expectStatus(unknown, INVALID);
    expect((unknown.body as unknown as Problem).code).toBe("validation_failed");
  });

  it("a range is rounded out to whole UTC hours", async () => {
    const body = await usageOk(orgId, `from=${D1}T10:30:00Z&to=${D1}T10:40:00Z&granularity=hour`);
    expect(body.from).toBe(iso(`${D1}T10:00:00Z`));
    expect(body.to).toBe(iso(`${D1}T11:00:00Z`));
    expect(totalValue(body, "api_calls")).toBe(5);
    // An offset is a time like any other.
    const offset = await usageOk(
      orgId,
      `from=${encodeURIComponent(`${D1}T11:00:00+01:00`)}&to=${D1}T11:00:00Z`,
    );
    expect(offset.from).toBe(iso(`${D1}T10:00:00Z`));
    expect(totalValue(offset, "api_calls")).toBe(5);
  });

  it("an invalid range or query is a 422", async () => {
    const bad = [
      `from=${D1}T00:00:00Z`,
      `to=${D2}T00:00:00Z`,
      `from=${D2}T00:00:00Z&to=${D1}T00:00:00Z`,
      `from=${D1}T00:00:00Z&to=${D1}T00:00:00Z`,
      "from=yesterday&to=today",
      `from=2031-13-01T00:00:00Z&to=${D2}T00:00:00Z`,
      "from=2030-01-01T00:00:00Z&to=2031-02-05T01:00:00Z",
      `${dayRange}&granularity=week`,
      `${dayRange}&group_by=region`,
    ];
    const wrong: string[] = [];
    for (const query of bad) {
      const res = await usage(orgId, query);
      if (res.status !== INVALID || (res.body as unknown as Problem).code !== "validation_failed") {
        wrong.push(`${query}: ${res.status} ${res.text.slice(0, 200)}`);
      }
    }
    expect(wrong, wrong.join("\n")).toEqual([]);
    // 400 days exactly is allowed.
    expectStatus(await usage(orgId, "from=2030-01-01T00:00:00Z&to=2031-02-05T00:00:00Z"), 200);
  });
});

describe("GET /v1/organizations/{org_id}/usage: access and the default range", () => {
  it("without a range: the current billing period (period set), events before it not counted", async () => {
    const { org, key } = await t.createOrgWithKey();
    // Two days before the org's first period began: still within the late window.
    await ingestOk([ev("p-before", "api_calls", fromNow(-2 * DAY), { value: 100 })], { key });
    clock.advance(3 * HOUR);
    await ingestOk([ev("p-in", "api_calls", fromNow(-HOUR), { value: 3 })], { key });
    const body = await usageOk(org.id);
    const view = await credits(org.id);
    expect(body.period).not.toBeNull();
    expect(iso(body.period?.start ?? "")).toBe(iso(view.period.start));
    expect(iso(body.period?.end ?? "")).toBe(iso(view.period.end));
    expect(new Date(body.from).getTime()).toBeLessThanOrEqual(new Date(view.period.start).getTime());
    expect(new Date(body.to).getTime()).toBeGreaterThanOrEqual(new Date(view.period.end).getTime());
    expect(totalValue(body, "api_calls")).toBe(3);
  });

  it("another organization's usage is a 404; an unknown org too; reading needs usage:read", async () => {
    const a = await t.createOrgWithKey();
    const b = await t.createOrgWithKey();
    await ingestOk([ev("x-1", "jobs", fromNow(-MINUTE))], { key: b.key });
    expectStatus(await usage(b.org.id, "", a.key), 404);
    expectStatus(await usage(UNKNOWN_ORG), 404);
    const aMember = await t.createMember(a.org.id, "owner");
    expectStatus(await usage(b.org.id, "", aMember.token), 404);
    const noScope = await usage(a.org.id, "", await t.createKey(a.org.id, ["orgs:read"]));
    expectStatus(noScope, 403);
    for (const role of ["viewer", "billing", "member"] as const) {
      const m = await t.createMember(b.org.id, role);
      expectStatus(await usage(b.org.id, "", m.token), 200);
    }
    expectStatus(await usage(b.org.id, "", await t.createKey(b.org.id, ["usage:read"])), 200);
  });
});

// =========================================================================================================

describe("POST /v1/organizations/{org_id}/quotas/{quota}/check and GET …/quotas", () => {
  it("an Orgplane-owned quota counts its rows; delta defaults to 1", async () => {
    const org = await t.createOrg();
    await createProject(org.id);
    await createProject(org.id);
    const one = await quotaCheck(org.id, "projects", {});
    expectStatus(one, 200);
    expect(one.body).toEqual({
      allowed: true,
      quota: "projects",
      limit: 3,
      current: 2,
      requested: 1,
      remaining: 1,
    });
    const noBody = await quotaCheck(org.id, "projects");
    expectStatus(noBody, 200);
    expect(noBody.body).toMatchObject({ allowed: true, requested: 1 });
    const two = await quotaCheck(org.id, "projects", { delta: 2 });
    expect(two.body).toEqual({
      allowed: false,
      quota: "projects",
      limit: 3,
      current: 2,
      requested: 2,
      remaining: 1,
    });
    const zero = await quotaCheck(org.id, "projects", { delta: 0 });
    expect(zero.body).toMatchObject({ allowed: true, requested: 0 });
    const members = await quotaCheck(org.id, "members", { delta: 5 });
    expect(members.body).toMatchObject({ allowed: true, limit: 5, current: 0, remaining: 5 });
  });

  it("a meter's quota: its sum over the current billing period", async () => {
    const { org, key } = await t.createOrgWithKey();
    // Before the period: not counted.
    await ingestOk([ev("q-0", "documents", fromNow(-2 * DAY), { value: 50 })], { key });
    clock.advance(3 * HOUR);
    await ingestOk(
      [
        ev("q-1", "documents", fromNow(-2 * HOUR), { value: 25 }),
        ev("q-2", "documents", fromNow(-HOUR), { value: "35" }),
      ],
      { key },
    );
    const fits = await quotaCheck(org.id, "documents", { delta: 40 });
    expectStatus(fits, 200);
    expect(fits.body).toEqual({
      allowed: true,
      quota: "documents",
      limit: 100,
      current: 60,
      requested: 40,
      remaining: 40,
    });
    const over = await quotaCheck(org.id, "documents", { delta: 41 });
    expect(over.body).toMatchObject({ allowed: false, current: 60, requested: 41 });
    expect((await quotaList(org.id)).documents).toMatchObject({ limit: 100, current: 60 });
  });

  it("a gauge meter's quota: the sum of each project's latest value", async () => {
    const { org, key } = await t.createOrgWithKey();
    const a = await createProject(org.id);
    const b = await createProject(org.id);
    clock.advance(5 * HOUR);
    await ingestOk(
      [
        ev("g-1", "storage_bytes", fromNow(-3 * HOUR), { value: 300 }, a),
        ev("g-2", "storage_bytes", fromNow(-1 * HOUR), { value: 400 }, a),
        ev("g-3", "storage_bytes", fromNow(-2 * HOUR), { value: 500 }, b),
      ],
      { key },
    );
    // An older sample arriving late does not move the gauge back.
    await ingestOk([ev("g-4", "storage_bytes", fromNow(-4 * HOUR), { value: 999 }, a)], { key });
    const check = await quotaCheck(org.id, "storage_bytes", { delta: 100 });
    expectStatus(check, 200);
    expect(check.body).toEqual({
      allowed: true,
      quota: "storage_bytes",
      limit: 1000,
      current: 900,
      requested: 100,
      remaining: 100,
    });
    expect((await quotaCheck(org.id, "storage_bytes", { delta: 101 })).body.allowed).toBe(false);
    expect((await quotaList(org.id)).storage_bytes).toMatchObject({ limit: 1000, current: 900 });
  });

  it("count, unique and max meters' quotas; a metered quota the plan does not name is unlimited", async () => {
    const { org, key } = await t.createOrgWithKey();
    // Events well inside the org's first billing period.
    clock.advance(HOUR);
    await ingestOk(
      [
        ev("k-1", "jobs", fromNow(-MINUTE)),
        ev("k-2", "jobs", fromNow(-MINUTE), { value: 10 }),
        ev("k-3", "active_users", fromNow(-MINUTE), { value: "ann" }),
        ev("k-4", "active_users", fromNow(-MINUTE), { value: "bob" }),
        ev("k-5", "active_users", fromNow(-MINUTE), { value: "ann" }),
        ev("k-6", "peak_connections", fromNow(-MINUTE), { value: 12 }),
        ev("k-7", "peak_connections", fromNow(-MINUTE), { value: 8 }),
      ],
      { key },
    );
    expect((await quotaCheck(org.id, "jobs", { delta: 3 })).body).toMatchObject({
      allowed: true,
      limit: 5,
      current: 2,
      remaining: 3,
    });
    expect((await quotaCheck(org.id, "jobs", { delta: 4 })).body.allowed).toBe(false);
    expect((await quotaCheck(org.id, "monthly_active_users", { delta: 1 })).body).toMatchObject({
      allowed: true,
      limit: 3,
      current: 2,
      remaining: 1,
    });
    const connections = await quotaCheck(org.id, "connections", { delta: 1_000_000 });
    expectStatus(connections, 200);
    expect(connections.body).toEqual({
      allowed: true,
      quota: "connections",
      limit: null,
      current: 12,
      requested: 1_000_000,
      remaining: null,
    });
    const list = await quotaList(org.id);
    expect(list.jobs).toMatchObject({ current: 2 });
    expect(list.monthly_active_users).toMatchObject({ current: 2 });
    // A product quota in the plan that no meter counts: 0 used.
    expect((await quotaCheck(org.id, "datasets", { delta: 10 })).body).toMatchObject({
      allowed: true,
      limit: 10,
      current: 0,
      remaining: 10,
    });
  });

  it("an unknown quota is a 404; a bad delta is refused; another org's quota is a 404", async () => {
    const a = await t.createOrgWithKey();
    const b = await t.createOrg();
    const unknown = await quotaCheck(a.org.id, "unicorns", {});
    expectStatus(unknown, 404);
    for (const delta of [-1, 1.5, "2"]) {
      const res = await quotaCheck(a.org.id, "projects", { delta });
      expect([400, 422], `${delta}: ${res.text}`).toContain(res.status);
      expect(res.body.code).toBe("validation_failed");
    }
    expectStatus(await quotaCheck(b.id, "projects", {}, a.key), 404);
    expectStatus(await quotaCheck(UNKNOWN_ORG, "projects", {}), 404);
    expectStatus(
      await quotaCheck(a.org.id, "projects", {}, await t.createKey(a.org.id, ["usage:read"])),
      200,
    );
    expectStatus(await quotaCheck(a.org.id, "projects", {}, await t.createKey(a.org.id, ["orgs:read"])), 403);
  });
});
