import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Catalog, CatalogMeter } from "../src/domain/catalog/catalog.types.ts";
import { loadPreset, type PresetName } from "../src/infra/catalog-file.ts";
import {
  createManualClock,
  createTestContext,
  expectStatus,
  type ManualClock,
  type TestContext,
  uniqueName,
} from "./harness.ts";
import { SUMMARY_FIELDS } from "./presets.ts";

/**
 * The usage view of each preset (GET /v1/organizations/{org_id}/usage → `summary`) shows the fields of its
 * reference platform's page (/work/shared/reference/pages, platforms.md §2.8), with values that follow
 * from the events reported: an app per preset, with that preset's catalog and a clock moved by hand.
 */

type EventData = { value?: number | string; key_id?: string };
type UsageEvent = { id: string; type: string; subject?: string; time: string; data?: EventData };
type UsageBody = {
  from: string;
  to: string;
  period: { start: string; end: string } | null;
  totals: { meter: string; value: number; credits: string }[];
  summary: Record<string, unknown>;
};

const HOUR = 60 * 60 * 1000;
const MINUTE = 60 * 1000;
const DAY = 24 * HOUR;
/** Every org below is created at NOW; its first billing period starts then. */
const NOW = new Date("2031-02-03T12:30:00.000Z");

type Setup = { t: TestContext; clock: ManualClock; catalog: Catalog };

/** A context on the preset's catalog, with its own database and a hand-moved clock. */
function presetContext(name: PresetName): () => Setup {
  let setup: Setup | undefined;
  beforeAll(async () => {
    const clock = createManualClock(NOW);
    const catalog = await loadPreset(name);
    setup = { t: await createTestContext({ clock, catalog }), clock, catalog };
  });
  afterAll(async () => {
    await setup?.t.close();
  });
  beforeEach(() => {
    setup?.clock.set(NOW);
  });
  return () => {
    if (setup === undefined) {
      throw new Error("no context");
    }
    return setup;
  };
}

function at(clock: ManualClock, ms: number): string {
  return new Date(clock.now().getTime() + ms).toISOString();
}

let serial = 0;
function ev(type: string, time: string, value?: number | string, subject?: string): UsageEvent {
  serial += 1;
  return {
    id: `ev-${serial}`,
    type,
    time,
    ...(value === undefined ? {} : { data: { value } }),
    ...(subject === undefined ? {} : { subject }),
  };
}

async function ingestOk(t: TestContext, orgId: string, events: UsageEvent[]): Promise<void> {
  const res = await t.request<{ accepted: number; rejected: number; events: unknown[] }>(
    "POST",
    "/v1/usage/events",
    { body: { org_id: orgId, events } },
  );
  expectStatus(res, 200);
  expect(res.body, res.text).toMatchObject({ accepted: events.length, rejected: 0 });
}

async function usage(t: TestContext, orgId: string, query = ""): Promise<UsageBody> {
  const res = await t.request<UsageBody>(
    "GET",
    `/v1/organizations/${orgId}/usage${query === "" ? "" : `?${query}`}`,
  );
  expectStatus(res, 200);
  return res.body;
}

async function createProject(t: TestContext, orgId: string, name = uniqueName("prj")): Promise<string> {
  const res = await t.request<{ id: string }>("POST", `/v1/organizations/${orgId}/projects`, {
    body: { name },
  });
  expectStatus(res, 201);
  return res.body.id;
}

function meterOf(catalog: Catalog, key: string): CatalogMeter {
  const m = catalog.meters.find((x) => x.key === key);
  if (m === undefined) {
    throw new Error(`the preset has no meter '${key}'`);
  }
  return m;
}

/** value × the meter's price (cost_per_unit or benchmark_cost_per_unit), as a number. */
function priced(catalog: Catalog, key: string, value: number, which: "cost" | "benchmark"): number {
  const m = meterOf(catalog, key);
  const price = which === "cost" ? m.costPerUnit : m.benchmarkCostPerUnit;
  return value * Number(price ?? "0");
}

function credited(catalog: Catalog, key: string, value: number): number {
  return value * Number(catalog.creditCosts[key] ?? "0");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) {
    throw new Error(`${what} is not an object: ${JSON.stringify(value)}`);
  }
  return value;
}

function list(value: unknown, what: string): Record<string, unknown>[] {
  if (!Array.isArray(value) || !value.every(isRecord)) {
    throw new Error(`${what} is not a list of objects: ${JSON.stringify(value)}`);
  }
  return value;
}

/** A decimal shown as a number (costs, credits) is compared to 9 decimals. */
function expectAmount(actual: unknown, expected: number, what: string): void {
  const n = typeof actual === "string" ? Number(actual) : actual;
  expect(typeof n, `${what}: ${JSON.stringify(actual)}`).toBe("number");
  expect(n as number, what).toBeCloseTo(expected, 9);
}

// =========================================================================================================

describe("llm-router: the org's token, cost, savings, request and app counts (reference page: Pulze org)", () => {
  const ctx = presetContext("llm-router");
  const FIELDS = SUMMARY_FIELDS["llm-router"];

  it("sums this cycle's tokens, prices them against the benchmark model, counts requests and apps", async () => {
    const { t, clock, catalog } = ctx();
    const org = await t.createOrg();
    const appA = await createProject(t, org.id, "chatbot");
    const appB = await createProject(t, org.id, "summarizer");
    // Before the cycle began: not in the current cycle's figures.
    await ingestOk(t, org.id, [
      ev("prompt_tokens", at(clock, -2 * DAY), 999_999),
      ev("requests", at(clock, -2 * DAY)),
    ]);
    clock.advance(3 * HOUR);
    await ingestOk(t, org.id, [
      ev("prompt_tokens", at(clock, -2 * HOUR), 1200, appA),
      ev("completion_tokens", at(clock, -2 * HOUR), 300, appA),
      ev("requests", at(clock, -2 * HOUR), undefined, appA),
      ev("prompt_tokens", at(clock, -HOUR), 800, appB),
      ev("completion_tokens", at(clock, -HOUR), 450, appB),
      ev("requests", at(clock, -HOUR), undefined, appB),
      ev("requests", at(clock, -MINUTE), undefined, appB),
    ]);
    const body = await usage(t, org.id);
    expect(body.period).not.toBeNull();
    const s = body.summary;
    expect(Object.keys(s)).toEqual(expect.arrayContaining(FIELDS));

    const prompt = 2000;
    const completion = 750;
    expect(s.prompt_tokens).toBe(prompt);
    expect(s.completion_tokens).toBe(completion);
    expect(s.total_tokens).toBe(prompt + completion);
    const promptCost = priced(catalog, "prompt_tokens", prompt, "cost");
    const completionCost = priced(catalog, "completion_tokens", completion, "cost");
    expect(promptCost).toBeGreaterThan(0);
    expectAmount(s.prompt_tokens_cost, promptCost, "prompt_tokens_cost");
    expectAmount(s.completion_tokens_cost, completionCost, "completion_tokens_cost");
    expectAmount(s.total_tokens_cost, promptCost + completionCost, "total_tokens_cost");
    const promptSavings = priced(catalog, "prompt_tokens", prompt, "benchmark") - promptCost;
    const completionSavings = priced(catalog, "completion_tokens", completion, "benchmark") - completionCost;
    expect(promptSavings).toBeGreaterThan(0);
    expectAmount(s.prompt_tokens_cost_savings, promptSavings, "prompt_tokens_cost_savings");
    expectAmount(s.completion_tokens_cost_savings, completionSavings, "completion_tokens_cost_savings");
    expectAmount(s.total_tokens_cost_savings, promptSavings + completionSavings, "total_tokens_cost_savings");
    expect(s.num_requests).toBe(3);
    expect(s.num_apps).toBe(2);

    // The tokens were paid for in credits (prepaid dollars), once.
    const credits = await t.request<{ balance: string; period: { used: string } }>(
      "GET",
      `/v1/organizations/${org.id}/credits`,
    );
    // (The early event was debited when it arrived, in this credit period.)
    const spent =
      credited(catalog, "prompt_tokens", prompt + 999_999) +
      credited(catalog, "completion_tokens", completion);
    expectAmount(credits.body.period.used, spent, "credits used this period");
  });

  it("an org with no use shows zeros, not missing fields", async () => {
    const { t } = ctx();
    const org = await t.createOrg();
    const s = (await usage(t, org.id)).summary;
    expect(Object.keys(s)).toEqual(expect.arrayContaining(FIELDS));
    for (const field of FIELDS) {
      expectAmount(s[field], 0, field);
    }
  });
});

// =========================================================================================================

describe("managed-postgres: totals, per-project rows and storage history (reference page: CapyDB usage)", () => {
  const ctx = presetContext("managed-postgres");
  const TOTALS = [
    "storage_bytes",
    "storage_limit_bytes",
    "connections",
    "projects",
    "projects_limit",
    "previews",
    "previews_limit",
    "backups_storage_bytes",
    "job_success_rate_7d",
    "webhook_delivery_rate_7d",
  ];
  const PROJECT_FIELDS = [
    "project_id",
    "name",
    "state",
    "storage_bytes",
    "storage_limit_bytes",
    "connections",
  ];

  it("totals: the latest gauge of each project summed, the plan's limits, counts; rates null without data", async () => {
    const { t, clock, catalog } = ctx();
    const plan = catalog.plans.find((p) => p.key === catalog.defaultPlan);
    if (plan === undefined) {
      throw new Error("no default plan");
    }
    const org = await t.createOrg();
    const a = await createProject(t, org.id, "main-db");
    const b = await createProject(t, org.id, "analytics");
    clock.advance(3 * HOUR);
    await ingestOk(t, org.id, [
      // Samples out of order: the latest by time counts, per project.
      ev("storage_bytes", at(clock, -HOUR), 3000, a),
      ev("storage_bytes", at(clock, -2 * HOUR), 1000, a),
      ev("storage_bytes", at(clock, -90 * MINUTE), 2000, b),
      ev("connections", at(clock, -30 * MINUTE), 5, a),
      ev("connections", at(clock, -20 * MINUTE), 7, b),
      ev("connections", at(clock, -10 * MINUTE), 4, b),
      ev("previews", at(clock, -10 * MINUTE), 1, a),
      ev("backups_storage_bytes", at(clock, -10 * MINUTE), 500, a),
      ev("backups_storage_bytes", at(clock, -10 * MINUTE), 700, b),
    ]);
    const s = (await usage(t, org.id)).summary;
    const totals = record(s.totals, "summary.totals");
    expect(Object.keys(totals)).toEqual(expect.arrayContaining(TOTALS));
    expect(totals).toMatchObject({
      storage_bytes: 3000 + 2000,
      storage_limit_bytes: plan.quotas.storage_bytes,
      connections: 5 + 4,
      projects: 2,
      projects_limit: plan.quotas.projects,
      previews: 1,
      previews_limit: plan.quotas.previews,
      backups_storage_bytes: 1200,
      job_success_rate_7d: null,
      webhook_delivery_rate_7d: null,
    });
    expect(typeof totals.projects_limit).toBe("number");

    const rows = list(s.projects, "summary.projects");
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(Object.keys(row)).toEqual(expect.arrayContaining(PROJECT_FIELDS));
    }
    const byId = Object.fromEntries(rows.map((r) => [String(r.project_id), r]));
    expect(byId[a]).toMatchObject({
      project_id: a,
      name: "main-db",
      state: "active",
      storage_bytes: 3000,
      storage_limit_bytes: plan.quotas.storage_bytes,
      connections: 5,
    });
    expect(byId[b]).toMatchObject({
      project_id: b,
      name: "analytics",
      state: "active",
      storage_bytes: 2000,
      connections: 4,
    });
  });

  it("webhook_delivery_rate_7d: delivered ÷ finished webhook deliveries over the 7 days before now", async () => {
    const { t, clock } = ctx();
    const org = await t.createOrg();
    const rate = async () =>
      record((await usage(t, org.id)).summary.totals, "summary.totals").webhook_delivery_rate_7d;
    // Two local receivers: one accepts every delivery, one answers 500 to all.
    const receivers = await Promise.all(
      [200, 500].map(
        (status) =>
          new Promise<Server>((resolve) => {
            const server = createServer((req, res) => {
              req.resume();
              req.on("end", () => res.writeHead(status).end());
            });
            server.listen(0, "127.0.0.1", () => resolve(server));
          }),
      ),
    );
    try {
      const endpoints: string[] = [];
      for (const server of receivers) {
        const { port } = server.address() as AddressInfo;
        const created = await t.request<{ id: string }>(
          "POST",
          `/v1/organizations/${org.id}/webhook-endpoints`,
          { body: { url: `http://127.0.0.1:${port}/hook` } },
        );
        expectStatus(created, 201);
        endpoints.push(created.body.id);
      }
      expect(await rate()).toBeNull();
      for (const id of endpoints) {
        expectStatus(
          await t.request("POST", `/v1/organizations/${org.id}/webhook-endpoints/${id}/test`),
          200,
        );
      }
      // One delivered; the other still pending (retrying) is not finished, so not counted yet.
      expect(await rate()).toBe(1);
      // Through the whole retry schedule (about 28 hours): the second fails for good.
      for (let i = 0; i < 8; i++) {
        clock.advance(11 * HOUR);
        await t.services.webhooks.deliverDue();
      }
      expect(await rate()).toBe(0.5);
      // Seven days on, both have left the window.
      clock.advance(7 * DAY);
      expect(await rate()).toBeNull();
    } finally {
      await Promise.all(receivers.map((s) => new Promise((resolve) => s.close(resolve))));
    }
  });

  it("job_success_rate_7d: succeeded ÷ (succeeded + failed) over the 7 days before now", async () => {
    const { t, clock } = ctx();
    const org = await t.createOrg();
    const rate = async () =>
      record((await usage(t, org.id)).summary.totals, "summary.totals").job_success_rate_7d;
    expect(await rate()).toBeNull();
    // Two failures six days ago (before the org's period: the rate is over 7 days, not the period).
    await ingestOk(t, org.id, [
      ev("jobs_failed", at(clock, -6 * DAY)),
      ev("jobs_failed", at(clock, -6 * DAY)),
    ]);
    expect(await rate()).toBe(0);
    clock.advance(3 * HOUR);
    await ingestOk(t, org.id, [
      ev("jobs_succeeded", at(clock, -2 * HOUR)),
      ev("jobs_succeeded", at(clock, -HOUR)),
      ev("jobs_succeeded", at(clock, -MINUTE)),
      ev("jobs_failed", at(clock, -MINUTE)),
    ]);
    expect(await rate()).toBeCloseTo(3 / 6, 9);
    // Two days on, the old failures have left the window.
    clock.advance(2 * DAY);
    expect(await rate()).toBeCloseTo(3 / 4, 9);
  });

  it("storage_history: one point per bucket, the org's storage at the bucket's end, carried forward", async () => {
    const { t, clock } = ctx();
    const org = await t.createOrg();
    const a = await createProject(t, org.id);
    const b = await createProject(t, org.id);
    // A sample from before the range is carried into it.
    await ingestOk(t, org.id, [ev("storage_bytes", at(clock, -DAY), 50, b)]);
    clock.advance(3 * HOUR); // 15:30
    await ingestOk(t, org.id, [
      ev("storage_bytes", "2031-02-03T13:10:00Z", 100, a),
      ev("storage_bytes", "2031-02-03T14:10:00Z", 200, b),
      ev("storage_bytes", "2031-02-03T15:10:00Z", 300, a),
    ]);
    const body = await usage(t, org.id, "from=2031-02-03T12:00:00Z&to=2031-02-03T16:00:00Z&granularity=hour");
    const history = list(body.summary.storage_history, "summary.storage_history");
    expect(history.map((p) => Object.keys(p).sort())).toEqual(
      history.map(() => ["sampled_at", "storage_bytes"]),
    );
    expect(history.map((p) => p.storage_bytes)).toEqual([50, 150, 300, 500]);
    // Each point is sampled within its bucket (at a sample's time or the bucket's end), in order.
    history.forEach((p, i) => {
      const sampled = Date.parse(String(p.sampled_at));
      const bucketStart = Date.parse("2031-02-03T12:00:00Z") + i * HOUR;
      expect(sampled, JSON.stringify(p)).toBeGreaterThanOrEqual(bucketStart);
      expect(sampled, JSON.stringify(p)).toBeLessThanOrEqual(bucketStart + HOUR);
    });
    expect(record(body.summary.totals, "summary.totals").storage_bytes).toBe(500);
  });
});

// =========================================================================================================

describe("rag-search: the organization's counters and time-ranged usage (reference: Trieve org usage)", () => {
  const ctx = presetContext("rag-search");
  const FIELDS = SUMMARY_FIELDS["rag-search"];

  it("counters from gauges and members; sums over the range; this month's messages whatever the range", async () => {
    const { t, clock } = ctx();
    const org = await t.createOrg();
    await t.createMember(org.id, "owner");
    await t.createMember(org.id, "member");
    await t.createMember(org.id, "viewer");
    // Last month's messages (before the org's period): in the range asked below, not in this month's count.
    await ingestOk(t, org.id, [ev("messages_created", at(clock, -2 * DAY), 100)]);
    clock.advance(3 * HOUR);
    const e = (type: string, value?: number, ago = HOUR) => ev(type, at(clock, -ago), value);
    await ingestOk(t, org.id, [
      e("datasets", 1, 2 * HOUR),
      e("datasets", 2, HOUR),
      e("chunks", 700),
      e("file_storage_bytes", 512),
      e("messages", 40),
      e("messages_created", 5),
      e("messages_created", 7),
      e("search_tokens", 100),
      e("search_tokens", 50),
      e("message_tokens", 80),
      e("searches"),
      e("searches"),
      e("searches"),
      e("bytes_ingested", 2048),
      e("tokens_ingested", 900),
      e("ocr_pages", 4),
      e("pages_crawled", 6),
      e("events", 10),
    ]);
    const body = await usage(t, org.id, `from=${at(clock, -3 * DAY)}&to=${at(clock, HOUR)}`);
    const s = body.summary;
    expect(Object.keys(s)).toEqual(expect.arrayContaining(FIELDS));
    expect(s).toMatchObject({
      dataset_count: 2,
      user_count: 3,
      file_storage: 512,
      message_count: 40,
      chunk_count: 700,
      search_tokens: 150,
      message_tokens: 80,
      search_count: 3,
      bytes_ingested: 2048,
      tokens_ingested: 900,
      ocr_pages_ingested: 4,
      website_pages_scraped: 6,
      events_ingested: 10,
      current_months_message_count: 12,
    });
    expect(body.totals.find((x) => x.meter === "messages_created")?.value).toBe(112);
    // The plan's quotas show the same meter-fed use.
    const quotas = await t.request<{ data: { quota: string; limit: number | null; current: number }[] }>(
      "GET",
      `/v1/organizations/${org.id}/quotas`,
    );
    expectStatus(quotas, 200);
    const current = Object.fromEntries(quotas.body.data.map((q) => [q.quota, q.current]));
    expect(current).toMatchObject({
      datasets: 2,
      chunks: 700,
      file_storage_bytes: 512,
      messages: 40,
      messages_per_month: 12,
      members: 3,
    });
  });
});

// =========================================================================================================

describe("multimodal-search: credits by operation over the billing month, and their cost (reference: Mixpeek)", () => {
  const ctx = presetContext("multimodal-search");

  it("the period's credits in total and by operation, the estimated cost and the period's bounds", async () => {
    const { t, clock, catalog } = ctx();
    const org = await t.createOrg();
    clock.advance(3 * HOUR);
    const used: Record<string, number> = {
      documents: 10,
      upload_mb: 5,
      video_minutes: 1.5,
      knn_searches: 20,
    };
    await ingestOk(
      t,
      org.id,
      Object.entries(used).map(([meter, value]) => ev(meter, at(clock, -HOUR), value)),
    );
    const body = await usage(t, org.id);
    const s = body.summary;
    const credits = Object.entries(used).reduce((sum, [m, v]) => sum + credited(catalog, m, v), 0);
    const cost = Object.entries(used).reduce((sum, [m, v]) => sum + priced(catalog, m, v, "cost"), 0);
    expect(credits).toBe(10 + 5 + 15 + 2);
    expectAmount(s.current_month_usage, credits, "current_month_usage");
    expectAmount(s.estimated_cost_usd, cost, "estimated_cost_usd");
    const byOperation = record(s.by_operation, "summary.by_operation");
    for (const m of catalog.meters) {
      expectAmount(byOperation[m.key], credited(catalog, m.key, used[m.key] ?? 0), `by_operation.${m.key}`);
    }
    expect(body.period).not.toBeNull();
    expect(s.billing_period_start).toBe(body.from);
    expect(s.billing_period_end).toBe(body.to);
    const view = await t.request<{ balance: string; period: { start: string } }>(
      "GET",
      `/v1/organizations/${org.id}/credits`,
    );
    expectAmount(view.body.balance, 1000 - credits, "credit balance");
  });
});
