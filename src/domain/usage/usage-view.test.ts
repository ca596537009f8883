import { describe, expect, it } from "vitest";
import { SUMMARY_FIELDS } from "../../../test/presets.ts";
import { CatalogError, loadPreset, parseCatalog } from "../../infra/catalog-file.ts";
import type { Catalog } from "../catalog/catalog.types.ts";
import type { MeterTotal, UsageProject, UsageViewData } from "./usage.types.ts";
import { defaultUsageView, renderUsageView, usageViewOf, viewNeeds } from "./usage-view.ts";

const FROM = new Date("2026-11-01T00:00:00Z");
const TO = new Date("2026-12-01T00:00:00Z");

const total = (value: number, credits = "0"): MeterTotal => ({ value, credits });

/** Data with nothing in it; tests fill what they read. */
function data(part: Partial<UsageViewData> = {}): UsageViewData {
  return {
    range: { from: FROM, to: TO },
    quotas: {},
    totals: new Map(),
    byProject: new Map(),
    gauges: new Map(),
    gaugesByProject: new Map(),
    last7Days: new Map(),
    counts: { members: 0, projects: 0, api_keys: 0, invitations: 0 },
    quotaUsed: new Map(),
    projects: [],
    history: new Map(),
    webhookDeliveryRate7d: null,
    ...part,
  };
}

/** A catalog from YAML: a plan with `quotas`, the meters given, and the usage view given. */
function catalog(meters: string, view: string, extra = ""): Catalog {
  return parseCatalog(
    `meters:\n${meters}\n${extra}plans:\n  - { key: free, name: Free, tier: free, price: null, monthly_credits: "0", quotas: { storage: 100, seats: null } }\ndefault_plan: free\nfallback_plan: free\nusage_view:\n${view}\n`,
    "test.yaml",
  );
}

function render(c: Catalog, d: UsageViewData) {
  return renderUsageView(c.usageView, c, d);
}

describe("renderUsageView", () => {
  it("llm-router: tokens, exact costs and savings against the benchmark, requests and apps", async () => {
    const c = await loadPreset("llm-router");
    const summary = render(
      c,
      data({
        totals: new Map([
          ["prompt_tokens", total(1000, "0.002")],
          ["completion_tokens", total(333, "0.001998")],
          ["requests", total(7)],
        ]),
        counts: { members: 1, projects: 3, api_keys: 2, invitations: 0 },
      }),
    );
    // 1000 × 0.000002 and 333 × 0.000006, exactly; benchmark 1000 × 0.00003 + 333 × 0.00006 = 0.04998.
    expect(summary).toEqual({
      prompt_tokens: 1000,
      completion_tokens: 333,
      total_tokens: 1333,
      prompt_tokens_cost: 0.002,
      completion_tokens_cost: 0.001998,
      total_tokens_cost: 0.003998,
      prompt_tokens_cost_savings: 0.028,
      completion_tokens_cost_savings: 0.017982,
      total_tokens_cost_savings: 0.045982,
      num_requests: 7,
      num_apps: 3,
    });
    expect(Object.keys(summary)).toEqual(SUMMARY_FIELDS["llm-router"]);
  });

  it("computes money in exact decimals: 0.1 + 0.2 credits is 0.3, 3 × 0.1 is 0.3", () => {
    const c = catalog(
      '  - { key: a, unit: x, cost_per_unit: "0.1", benchmark_cost_per_unit: "0.1" }\n  - { key: b, unit: x }',
      "  credits: { credits: [a, b] }\n  cost: { cost: a }\n  savings: { savings: a }\n  both: { meters: [a, b] }",
      'credit_costs: { a: "0.1", b: "0.2" }\n',
    );
    const summary = render(
      c,
      data({
        totals: new Map([
          ["a", total(3, "0.1")],
          ["b", total(0.2, "0.2")],
        ]),
      }),
    );
    expect(summary).toEqual({ credits: 0.3, cost: 0.3, savings: 0, both: 3.2 });
  });

  it("a meter without events counts 0, and a negative saving (a dearer route) is shown as such", () => {
    const c = catalog(
      '  - { key: a, unit: x, cost_per_unit: "0.5", benchmark_cost_per_unit: "0.25" }',
      "  value: { meter: a }\n  savings: { savings: a }",
    );
    expect(render(c, data())).toEqual({ value: 0, savings: 0 });
    expect(render(c, data({ totals: new Map([["a", total(2)]]) }))).toEqual({ value: 2, savings: -0.5 });
  });

  it("rate_7d is null on a zero denominator (never NaN), and a fraction otherwise", () => {
    const c = catalog(
      "  - { key: ok, unit: job, aggregation: count }\n  - { key: failed, unit: job, aggregation: count }",
      "  rate: { rate_7d: { success: [ok], total: [ok, failed] } }\n  webhooks: { webhook_delivery_rate_7d: {} }",
    );
    expect(render(c, data())).toEqual({ rate: null, webhooks: null });
    expect(
      render(
        c,
        data({
          last7Days: new Map([
            ["ok", 0],
            ["failed", 0],
          ]),
        }),
      ).rate,
    ).toBeNull();
    expect(
      render(
        c,
        data({
          last7Days: new Map([
            ["ok", 3],
            ["failed", 1],
          ]),
          webhookDeliveryRate7d: 0.5,
        }),
      ),
    ).toEqual({ rate: 0.75, webhooks: 0.5 });
  });

  it("nests objects; quota limits (null: unlimited or not in the plan) and use; counts; the range", () => {
    const c = catalog(
      "  - { key: disk, unit: byte, aggregation: last, quota: storage }",
      [
        "  outer:",
        "    inner:",
        "      used: { quota_used: storage }",
        "      limit: { quota_limit: storage }",
        "    seats: { quota_limit: seats }",
        "    members: { quota_used: members }",
        "    keys: { count: api_keys }",
        "  period: { from: { range: from }, to: { range: to } }",
      ].join("\n"),
    );
    const summary = render(
      c,
      data({
        quotas: { storage: 100, seats: null },
        quotaUsed: new Map([["storage", 42]]),
        counts: { members: 4, projects: 0, api_keys: 2, invitations: 1 },
      }),
    );
    expect(summary).toEqual({
      outer: { inner: { used: 42, limit: 100 }, seats: null, members: 4, keys: 2 },
      period: { from: "2026-11-01T00:00:00.000Z", to: "2026-12-01T00:00:00.000Z" },
    });
  });

  it("managed-postgres: totals, one row per live project (org-level usage left out), storage history", async () => {
    const c = await loadPreset("managed-postgres");
    const projects: UsageProject[] = [
      { id: "prj_a", name: "shop", state: "active" },
      { id: "prj_b", name: "blog", state: "archived" },
    ];
    const summary = render(
      c,
      data({
        quotas: { projects: 2, previews: 2, storage_bytes: 1073741824, connections: 20, members: 3 },
        gauges: new Map([
          ["storage_bytes", 3000],
          ["connections", 5],
          ["previews", 1],
          ["backups_storage_bytes", 900],
        ]),
        gaugesByProject: new Map<string | null, Map<string, number>>([
          [
            "prj_a",
            new Map([
              ["storage_bytes", 1000],
              ["connections", 4],
            ]),
          ],
          ["prj_b", new Map([["storage_bytes", 2000]])],
          [null, new Map([["connections", 1]])],
        ]),
        last7Days: new Map([
          ["jobs_succeeded", 9],
          ["jobs_failed", 1],
        ]),
        counts: { members: 1, projects: 2, api_keys: 0, invitations: 0 },
        projects,
        history: new Map([
          [
            "storage_bytes",
            [
              { at: new Date("2026-11-01T00:00:00Z"), value: 10 },
              { at: new Date("2026-11-02T00:00:00Z"), value: 3000 },
            ],
          ],
        ]),
        webhookDeliveryRate7d: 1,
      }),
    );
    expect(summary).toEqual({
      totals: {
        storage_bytes: 3000,
        storage_limit_bytes: 1073741824,
        connections: 5,
        projects: 2,
        projects_limit: 2,
        previews: 1,
        previews_limit: 2,
        backups_storage_bytes: 900,
        job_success_rate_7d: 0.9,
        webhook_delivery_rate_7d: 1,
      },
      projects: [
        {
          project_id: "prj_a",
          name: "shop",
          state: "active",
          storage_bytes: 1000,
          storage_limit_bytes: 1073741824,
          connections: 4,
        },
        {
          project_id: "prj_b",
          name: "blog",
          state: "archived",
          storage_bytes: 2000,
          storage_limit_bytes: 1073741824,
          connections: 0,
        },
      ],
      storage_history: [
        { sampled_at: "2026-11-01T00:00:00.000Z", storage_bytes: 10 },
        { sampled_at: "2026-11-02T00:00:00.000Z", storage_bytes: 3000 },
      ],
    });
  });

  it("per_project: range aggregates and money are the project's; no projects, no rows", () => {
    const c = catalog(
      '  - { key: a, unit: x, cost_per_unit: "0.01" }',
      "  rows:\n    per_project:\n      id: { project: id }\n      a: { meter: a }\n      cost: { cost: a }\n      credits: { credits: a }",
      'credit_costs: { a: "2" }\n',
    );
    expect(render(c, data())).toEqual({ rows: [] });
    const summary = render(
      c,
      data({
        totals: new Map([["a", total(30, "60")]]),
        byProject: new Map<string | null, Map<string, MeterTotal>>([
          ["prj_a", new Map([["a", total(10, "20")]])],
          ["prj_gone", new Map([["a", total(15, "30")]])],
          [null, new Map([["a", total(5, "10")]])],
        ]),
        projects: [
          { id: "prj_a", name: "a", state: "active" },
          { id: "prj_b", name: "b", state: "active" },
        ],
      }),
    );
    expect(summary).toEqual({
      rows: [
        { id: "prj_a", a: 10, cost: 0.1, credits: 20 },
        { id: "prj_b", a: 0, cost: 0, credits: 0 },
      ],
    });
  });

  it("history: no points when the gauge has none", () => {
    const c = catalog(
      "  - { key: g, unit: x, aggregation: last }",
      "  h: { history: { meter: g, time_field: at, value_field: v } }",
    );
    expect(render(c, data())).toEqual({ h: [] });
  });

  it("rag-search and multimodal-search render their reference fields", async () => {
    const rag = await loadPreset("rag-search");
    expect(
      render(
        rag,
        data({
          totals: new Map([["searches", total(12)]]),
          gauges: new Map([
            ["datasets", 2],
            ["chunks", 700],
          ]),
          counts: { members: 3, projects: 0, api_keys: 0, invitations: 0 },
          quotaUsed: new Map([["messages_per_month", 9]]),
        }),
      ),
    ).toEqual({
      search_tokens: 0,
      message_tokens: 0,
      dataset_count: 2,
      user_count: 3,
      file_storage: 0,
      message_count: 0,
      search_count: 12,
      chunk_count: 700,
      bytes_ingested: 0,
      tokens_ingested: 0,
      ocr_pages_ingested: 0,
      website_pages_scraped: 0,
      events_ingested: 0,
      current_months_message_count: 9,
    });
    const mm = await loadPreset("multimodal-search");
    expect(
      render(
        mm,
        data({
          totals: new Map([
            ["upload_mb", total(10, "10")],
            ["knn_searches", total(3, "0.3")],
          ]),
        }),
      ),
    ).toEqual({
      current_month_usage: 10.3,
      // 10 × 0.0005 + 3 × 0.00005
      estimated_cost_usd: 0.00515,
      billing_period_start: "2026-11-01T00:00:00.000Z",
      billing_period_end: "2026-12-01T00:00:00.000Z",
      by_operation: {
        documents: 0,
        upload_mb: 10,
        video_minutes: 0,
        knn_searches: 0.3,
        hybrid_searches: 0,
        web_searches: 0,
        storage_gb_months: 0,
      },
    });
  });

  it("without usage_view: every meter's aggregate and every quota's limit and use", () => {
    const c = parseCatalog(
      "meters:\n  - { key: a, unit: x }\n  - { key: g, unit: x, aggregation: last, quota: disk }\nplans:\n  - { key: free, name: Free, tier: free, price: null, monthly_credits: '0', quotas: { projects: 2, seats: null } }\ndefault_plan: free\nfallback_plan: free\n",
      "test.yaml",
    );
    expect(c.usageView).toBeUndefined();
    expect(usageViewOf(c)).toEqual(defaultUsageView(c));
    const summary = render(
      c,
      data({
        quotas: { projects: 2, seats: null },
        totals: new Map([
          ["a", total(5)],
          ["g", total(7)],
        ]),
        counts: { members: 1, projects: 1, api_keys: 0, invitations: 0 },
        quotaUsed: new Map([["disk", 7]]),
      }),
    );
    expect(summary).toEqual({
      meters: { a: 5, g: 7 },
      quotas: {
        projects: { limit: 2, used: 1 },
        seats: { limit: null, used: 0 },
        disk: { limit: null, used: 7 },
      },
    });
    expect(viewNeeds(undefined, c)).toEqual({
      last7Days: [],
      history: [],
      gauges: false,
      byProject: false,
      counts: ["projects"],
      projects: false,
      quotaUsed: ["seats", "disk"],
      webhookDeliveryRate7d: false,
    });
  });
});

describe("viewNeeds", () => {
  it("asks only for what each preset's view reads", async () => {
    const needs = async (name: Parameters<typeof loadPreset>[0]) => {
      const c = await loadPreset(name);
      return viewNeeds(c.usageView, c);
    };
    const none = {
      last7Days: [],
      history: [],
      gauges: false,
      byProject: false,
      counts: [],
      projects: false,
      quotaUsed: [],
      webhookDeliveryRate7d: false,
    };
    expect(await needs("managed-postgres")).toEqual({
      last7Days: ["jobs_succeeded", "jobs_failed"],
      history: ["storage_bytes"],
      gauges: true,
      byProject: true,
      counts: ["projects"],
      projects: true,
      quotaUsed: [],
      webhookDeliveryRate7d: true,
    });
    expect(await needs("llm-router")).toEqual({ ...none, counts: ["projects"] });
    expect(await needs("rag-search")).toEqual({
      ...none,
      gauges: true,
      counts: ["members"],
      quotaUsed: ["messages_per_month"],
    });
    expect(await needs("multimodal-search")).toEqual(none);
  });

  it("a per_project list needs the projects and the per-project aggregates", () => {
    const c = catalog("  - { key: a, unit: x }", "  rows: { per_project: { a: { meter: a } } }");
    expect(viewNeeds(c.usageView, c)).toMatchObject({ projects: true, byProject: true, gauges: false });
  });
});

describe("usage_view in the catalog", () => {
  const errorFor = (meters: string, view: string, extra = ""): string => {
    try {
      catalog(meters, view, extra);
    } catch (err) {
      expect(err).toBeInstanceOf(CatalogError);
      return (err as Error).message;
    }
    throw new Error("the catalog was accepted");
  };
  const METERS = '  - { key: a, unit: x, cost_per_unit: "0.1" }\n  - { key: g, unit: x, aggregation: last }';

  it("reads sources, lists and nested objects in order", () => {
    const c = catalog(
      METERS,
      "  z: { meter: a }\n  t:\n    webhook_delivery_rate_7d: { webhook_delivery_rate_7d: {} }\n    c: { cost: [a] }\n  h: { history: { meter: g, time_field: sampled_at, value_field: storage_bytes } }",
    );
    expect(c.usageView).toEqual([
      { name: "z", node: { kind: "meter", meter: "a" } },
      {
        name: "t",
        node: {
          kind: "group",
          fields: [
            { name: "webhook_delivery_rate_7d", node: { kind: "webhook_delivery_rate_7d" } },
            { name: "c", node: { kind: "cost", meters: ["a"] } },
          ],
        },
      },
      {
        name: "h",
        node: { kind: "history", meter: "g", timeField: "sampled_at", valueField: "storage_bytes" },
      },
    ]);
  });

  it("names the path, line and column of a mistake", () => {
    const at = (message: string) => message.replace(/^invalid catalog test\.yaml:\d+:\d+: /, "");
    expect(errorFor(METERS, "  x: { meter: nope }")).toMatch(
      /^invalid catalog test\.yaml:9:15: usage_view\.x\.meter names no meter 'nope'$/,
    );
    // The view given under METERS' catalog → the mistake, after the file, line and column.
    const cases: [string, string | RegExp][] = [
      [
        "  x:\n    y: { gauge: a }",
        "usage_view.x.y.gauge 'a' is not a gauge (a meter with aggregation: last)",
      ],
      ["  x: { cost: [a, g] }", "usage_view.x.cost[1] meter 'g' has no cost_per_unit"],
      ["  x: { savings: a }", "usage_view.x.savings meter 'a' has no benchmark_cost_per_unit"],
      ["  x: { credits: a }", "usage_view.x.credits meter 'a' has no credit cost (credit_costs)"],
      [
        "  x: { quota_limit: disk }",
        "usage_view.x.quota_limit names no quota 'disk' (neither a plan's, a meter's nor one Orgplane counts)",
      ],
      [
        "  x: { rate_7d: { success: [a], total: [zz] } }",
        "usage_view.x.rate_7d.total[0] names no meter 'zz'",
      ],
      ["  x: { range: { meter: a } }", "usage_view.x.range must be from or to"],
      ["  x: { history: { meter: g, time_field: t } }", "usage_view.x.history.value_field is required"],
      ["  x: 5", /^usage_view\.x must be a source /],
      ["  x: {}", "usage_view.x must have at least one field"],
      [
        "  x: { meter: a, gauge: g }",
        /^usage_view\.x is a source \('meter'\) only when 'meter' is its one member/,
      ],
      ["  x: { project: id }", "usage_view.x.project can only be used inside per_project"],
      [
        "  x: { per_project: { n: { count: projects } } }",
        "usage_view.x.per_project.n.count is the organization's, so cannot be inside per_project",
      ],
      [
        "  x: { per_project: { n: { per_project: { m: { meter: a } } } } }",
        "usage_view.x.per_project.n.per_project is a list, and lists cannot be inside per_project",
      ],
      ["  x: { count: projectz }", "usage_view.x.count must be projects, members, api_keys or invitations"],
    ];
    for (const [view, mistake] of cases) {
      if (typeof mistake === "string") {
        expect(at(errorFor(METERS, view)), view).toBe(mistake);
      } else {
        expect(at(errorFor(METERS, view)), view).toMatch(mistake);
      }
    }
  });

  it("accepts quotas of a plan, of a meter, and the ones Orgplane counts", () => {
    const c = catalog(
      "  - { key: g, unit: x, aggregation: last, quota: disk }",
      "  a: { quota_limit: storage }\n  b: { quota_used: disk }\n  c: { quota_limit: invitations }",
    );
    expect(c.usageView?.map((f) => f.name)).toEqual(["a", "b", "c"]);
  });
});
