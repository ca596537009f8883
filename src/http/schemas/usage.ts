import { z } from "@hono/zod-openapi";
import type {
  IngestResult,
  MeterTotalView,
  SeriesPoint,
  UsageEventInput,
  UsageReport,
} from "../../domain/usage/usage.service.ts";
import { Timestamp } from "./common.ts";

/** A batch holds at most this many events. */
export const MAX_USAGE_BATCH = 1000;

const Scalar = z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]);

const EventData = z
  .record(z.string().min(1).max(64), Scalar)
  .refine((d) => Object.keys(d).length <= 32, { message: "at most 32 members" })
  .refine((d) => d.value === undefined || typeof d.value === "number" || typeof d.value === "string", {
    message: "value must be a number or a string",
    path: ["value"],
  })
  .refine((d) => !Object.values(d).some((v) => typeof v === "string" && v.includes("\u0000")), {
    message: "may not contain NUL characters",
  })
  .openapi({
    description:
      "`value` (a non-negative number or decimal string; for unique_count meters the distinct thing counted) " +
      "and `key_id` (the API key the use belongs to) are read by Orgplane; every other member is kept as a " +
      "property of the event (model, endpoint…): strings, numbers, booleans or null.",
    example: { value: 1250, model: "gpt-4o", endpoint: "/v1/chat" },
  });

export const UsageEventSchema = z
  .strictObject({
    id: z
      .string()
      .min(1)
      .max(200)
      .refine((s) => !s.includes("\u0000"), { message: "may not contain NUL characters" })
      .openapi({
        description: "Unique per organization: a second event with this id is a duplicate",
        example: "evt_7f3a",
      }),
    type: z.string().min(1).max(64).openapi({ description: "The meter's key", example: "prompt_tokens" }),
    subject: z.string().min(1).max(64).optional().openapi({
      description:
        "The organization or one of its projects; default: a project key's project, else the organization",
      example: "prj_01jd0v4n6qf9yb5c8h2m3k7x1z",
    }),
    time: Timestamp.openapi({
      description: "When the use happened (RFC 3339 with offset)",
      example: "2026-11-26T10:00:00Z",
    }),
    data: EventData.optional(),
    // CloudEvents context attributes a CloudEvents SDK sends; accepted and not kept.
    specversion: z.string().max(16).optional(),
    source: z.string().max(1024).optional(),
    datacontenttype: z.string().max(255).optional(),
  })
  .openapi("UsageEvent");

export const IngestUsageBody = z
  .strictObject({
    org_id: z
      .string()
      .max(64)
      .optional()
      .openapi({ description: "Required for an operator key; an org credential may only name its own" }),
    events: z.array(UsageEventSchema).min(1).max(MAX_USAGE_BATCH),
  })
  .openapi("UsageEventBatch");

export const IngestUsageResultSchema = z
  .object({
    accepted: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.number().int(),
    events: z
      .array(
        z.object({
          index: z.number().int(),
          id: z.string(),
          status: z.enum(["duplicate", "rejected"]),
          reason: z.enum([
            "duplicate",
            "unknown_meter",
            "unknown_subject",
            "unknown_key",
            "time_in_future",
            "too_late",
            "invalid_value",
            "insufficient_credits",
            "spending_limit_reached",
          ]),
          detail: z.string(),
        }),
      )
      .openapi({ description: "The events not accepted, in batch order" }),
    credits: z.object({ debited: z.string(), balance: z.string() }).nullable().openapi({
      description: "What the accepted events cost in credits, and the balance after; null: nothing",
    }),
  })
  .openapi("UsageIngestResult");

export function toUsageEvents(body: z.infer<typeof IngestUsageBody>): UsageEventInput[] {
  return body.events.map((e) => ({
    id: e.id,
    type: e.type,
    subject: e.subject,
    time: new Date(e.time),
    data: e.data,
  }));
}

export function toIngestResponse(r: IngestResult): z.infer<typeof IngestUsageResultSchema> {
  return r;
}

const CommaList = (values: readonly string[], what: string) =>
  z
    .string()
    .max(2000)
    .optional()
    .transform((s, ctx) => {
      if (s === undefined || s.trim() === "") {
        return [];
      }
      const parts = s.split(",").map((p) => p.trim());
      for (const p of parts) {
        if (!values.includes(p)) {
          ctx.addIssue({ code: "custom", message: `'${p}' is not one of ${values.join(", ")}` });
        }
      }
      return parts;
    })
    .openapi({ description: what, type: "string" });

export const UsageQuerySchema = z
  .strictObject({
    from: Timestamp.optional().openapi({
      description: "Start (inclusive), rounded down to the UTC hour; with `to`",
    }),
    to: Timestamp.optional().openapi({
      description: "End (exclusive), rounded up to the UTC hour; with `from`",
    }),
    granularity: z.enum(["hour", "day", "month"]).default("day"),
    group_by: CommaList(
      ["project", "key", "meter"],
      "Comma list of project, key, meter (meter is always a dimension)",
    ),
    meters: z
      .string()
      .max(2000)
      .optional()
      .transform((s) => (s === undefined || s.trim() === "" ? undefined : s.split(",").map((p) => p.trim())))
      .openapi({ description: "Comma list of meter keys (default: every meter)", type: "string" }),
  })
  .superRefine((q, ctx) => {
    if ((q.from === undefined) !== (q.to === undefined)) {
      ctx.addIssue({
        code: "custom",
        path: [q.from === undefined ? "from" : "to"],
        message: "give both from and to, or neither",
      });
      return;
    }
    if (q.from !== undefined && q.to !== undefined) {
      const span = Date.parse(q.to) - Date.parse(q.from);
      if (span <= 0) {
        ctx.addIssue({ code: "custom", path: ["to"], message: "must be after from" });
      } else if (span > 400 * 86_400_000) {
        ctx.addIssue({ code: "custom", path: ["to"], message: "a range spans at most 400 days" });
      }
    }
  });

const Decimal = z.string().openapi({ description: "Exact decimal string", example: "12.5" });

const MeterTotalSchema = z.object({
  meter: z.string(),
  unit: z.string(),
  aggregation: z.enum(["sum", "count", "max", "last", "unique_count"]),
  value: z.number(),
  credits: Decimal,
  cost: Decimal.nullable().openapi({
    description: "value × the meter's cost_per_unit (sum and count meters)",
  }),
  benchmark_cost: Decimal.nullable(),
  savings: Decimal.nullable().openapi({ description: "benchmark_cost − cost" }),
});

export const UsageReportSchema = z
  .object({
    org_id: z.string(),
    from: z.string(),
    to: z.string(),
    granularity: z.enum(["hour", "day", "month"]),
    group_by: z.array(z.string()),
    period: z
      .object({ start: z.string(), end: z.string() })
      .nullable()
      .openapi({ description: "The billing period shown when no range was given" }),
    currency: z.string(),
    totals: z.array(MeterTotalSchema),
    series: z.array(
      z.object({
        start: z.string(),
        meter: z.string(),
        project_id: z.string().nullable().optional(),
        key_id: z.string().nullable().optional(),
        value: z.number(),
        credits: Decimal,
      }),
    ),
    projects: z.array(
      z.object({
        project_id: z.string().nullable(),
        name: z.string().nullable(),
        state: z.enum(["active", "archived"]).nullable(),
        meters: z.record(z.string(), z.number()),
      }),
    ),
    summary: z.record(z.string(), z.unknown()).openapi({
      description: "The catalog's usage view: the preset's reference fields (docs/usage-view.md)",
    }),
  })
  .openapi("UsageReport");

function totalResponse(t: MeterTotalView) {
  return {
    meter: t.meter,
    unit: t.unit,
    aggregation: t.aggregation,
    value: t.value,
    credits: t.credits,
    cost: t.cost,
    benchmark_cost: t.benchmarkCost,
    savings: t.savings,
  };
}

function seriesResponse(p: SeriesPoint) {
  return {
    start: p.start.toISOString(),
    meter: p.meter,
    ...(p.projectId === undefined ? {} : { project_id: p.projectId }),
    ...(p.keyId === undefined ? {} : { key_id: p.keyId }),
    value: p.value,
    credits: p.credits,
  };
}

export function toUsageReportResponse(r: UsageReport): z.infer<typeof UsageReportSchema> {
  return {
    org_id: r.orgId,
    from: r.from.toISOString(),
    to: r.to.toISOString(),
    granularity: r.granularity,
    group_by: r.groupBy,
    period:
      r.period === null ? null : { start: r.period.start.toISOString(), end: r.period.end.toISOString() },
    currency: r.currency,
    totals: r.totals.map(totalResponse),
    series: r.series.map(seriesResponse),
    projects: r.projects.map((p) => ({
      project_id: p.projectId,
      name: p.name,
      state: p.state,
      meters: p.meters,
    })),
    summary: r.summary,
  };
}

export const QuotaCheckBody = z
  .strictObject({
    delta: z
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .default(1)
      .openapi({ description: "How many more the caller wants to add" }),
  })
  .openapi("QuotaCheckRequest");

export const QuotaCheckSchema = z
  .object({
    allowed: z.boolean(),
    quota: z.string(),
    limit: z.number().nullable(),
    current: z.number(),
    requested: z.number(),
    remaining: z.number().nullable(),
  })
  .openapi("QuotaCheck");

type ParsedBatch = z.infer<typeof IngestUsageBody>;

const EVENT_KEYS = new Set([
  "id",
  "type",
  "subject",
  "time",
  "data",
  "specversion",
  "source",
  "datacontenttype",
]);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function optionalText(v: unknown, max: number): boolean {
  return v === undefined || (typeof v === "string" && v.length <= max);
}

/** `data` as EventData accepts it: ≤ 32 members named by 1–64 characters, scalar values, no NUL. */
function plainData(v: unknown): boolean {
  if (!isPlainObject(v) || Object.getPrototypeOf(v) !== Object.prototype) {
    return false;
  }
  if (v.value !== undefined && typeof v.value !== "number" && typeof v.value !== "string") {
    return false;
  }
  let n = 0;
  for (const k in v) {
    n++;
    if (n > 32 || k.length === 0 || k.length > 64) {
      return false;
    }
    const value = v[k];
    if (typeof value === "string") {
      if (value.length > 1024 || value.includes("\u0000")) {
        return false;
      }
    } else if (
      !(value === null || typeof value === "boolean" || (typeof value === "number" && Number.isFinite(value)))
    ) {
      return false;
    }
  }
  return true;
}

function plainEvent(e: unknown): boolean {
  if (!isPlainObject(e)) {
    return false;
  }
  for (const k in e) {
    if (!EVENT_KEYS.has(k)) {
      return false;
    }
  }
  const { id, type, subject, time, data } = e;
  return (
    typeof id === "string" &&
    id.length >= 1 &&
    id.length <= 200 &&
    !id.includes("\u0000") &&
    typeof type === "string" &&
    type.length >= 1 &&
    type.length <= 64 &&
    (subject === undefined || (typeof subject === "string" && subject.length >= 1 && subject.length <= 64)) &&
    typeof time === "string" &&
    Timestamp.safeParse(time).success &&
    (data === undefined || plainData(data)) &&
    optionalText(e.specversion, 16) &&
    optionalText(e.source, 1024) &&
    optionalText(e.datacontenttype, 255)
  );
}

/**
 * The batch as `IngestUsageBody` would parse it, checked by hand: a 1,000-event batch costs the zod
 * walk several milliseconds, this a fraction. Accepts only what the schema accepts (test/usage-body.test.ts
 * holds them equal); anything it does not accept goes through the schema, so refusals read the same.
 */
export function parseUsageBatch(body: unknown): { ok: true; value: ParsedBatch } | { ok: false } {
  if (!isPlainObject(body)) {
    return { ok: false };
  }
  for (const k in body) {
    if (k !== "org_id" && k !== "events") {
      return { ok: false };
    }
  }
  const { org_id: orgId, events } = body;
  if (
    !optionalText(orgId, 64) ||
    !Array.isArray(events) ||
    events.length === 0 ||
    events.length > MAX_USAGE_BATCH
  ) {
    return { ok: false };
  }
  for (const e of events) {
    if (!plainEvent(e)) {
      return { ok: false };
    }
  }
  return { ok: true, value: body as ParsedBatch };
}
