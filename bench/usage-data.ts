/**
 * Synthetic usage events for bench/usage.ts: one deterministic generator, and the three forms the benchmark
 * sends the same events in: the JSON body of POST /v1/usage/events, the parameter arrays of the raw
 * `INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING` baseline, and the store's StoredUsageEvent.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { StoredUsageEvent } from "../src/domain/usage/usage.store.ts";
import { mulberry32 } from "../test/util.ts";

/** A meter the generator reports, with how its values are drawn and what a unit costs in credits. */
export type BenchMeter = {
  key: string;
  /** A value as an exact decimal string, also a valid JSON number. */
  value(rng: Rng): string;
  /** Credits per unit as the catalog has it ("0": not priced). */
  creditCost: string;
};

export type BenchOrg = { id: string; projects: readonly string[] };

export type BenchEvent = {
  id: string;
  meter: string;
  /** null: reported for the org itself (no `subject`). */
  projectId: string | null;
  timeMs: number;
  value: string;
  model: string;
  endpoint: string;
};

export type BenchBatch = { org: BenchOrg; events: BenchEvent[] };

export type Rng = () => number;

/** mulberry32, the tests' seeded generator: the runs must be reproducible, not random. */
export const rng: (seed: number) => Rng = mulberry32;

function pick<T>(r: Rng, items: readonly T[]): T {
  const item = items[Math.floor(r() * items.length)];
  if (item === undefined) {
    throw new Error("pick from an empty list");
  }
  return item;
}

const MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "llama-3.1-70b-instruct", "mistral-large-2411"] as const;
const ENDPOINTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings"] as const;

/** Values by the meter's unit: tokens in the hundreds, one request per event, small amounts otherwise. */
function valueByUnit(unit: string): (r: Rng) => string {
  switch (unit) {
    case "token":
      return (r) => String(1 + Math.floor(r() * 4_000));
    case "request":
      return () => "1";
    case "usd":
      return (r) => (Math.floor(r() * 5_000) / 1e6).toFixed(6);
    default:
      return (r) => String(1 + Math.floor(r() * 100));
  }
}

/**
 * A preset's meters that take a plain value (sum, count, max, last: not unique_count), split by whether an
 * event costs credits: `unpriced` (no or a zero credit cost) and `priced`.
 */
export function presetMeters(file: string): { unpriced: BenchMeter[]; priced: BenchMeter[] } {
  const doc: unknown = parse(readFileSync(file, "utf8"));
  const record = (v: unknown): Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  const root = record(doc);
  const costs = record(root.credit_costs);
  const unpriced: BenchMeter[] = [];
  const priced: BenchMeter[] = [];
  for (const item of Array.isArray(root.meters) ? (root.meters as unknown[]) : []) {
    const m = record(item);
    if (typeof m.key !== "string" || m.aggregation === "unique_count") {
      continue;
    }
    const cost = typeof costs[m.key] === "string" ? (costs[m.key] as string) : "0";
    const meter = { key: m.key, value: valueByUnit(String(m.unit)), creditCost: cost };
    (/[1-9]/.test(cost) ? priced : unpriced).push(meter);
  }
  return { unpriced, priced };
}

/**
 * Event ids: `evt_` + an 8-hex run tag + a 12-digit sequence number (24 characters), unique across a run's
 * phases; the tag keeps two runs on one database apart.
 */
export class EventIds {
  private next = 0;
  private readonly tag: string;
  constructor(tag: string) {
    this.tag = tag;
  }
  take(): string {
    return `evt_${this.tag}${String(this.next++).padStart(12, "0")}`;
  }
  get issued(): number {
    return this.next;
  }
}

export type BatchSpec = {
  orgs: readonly BenchOrg[];
  meters: readonly BenchMeter[];
  /** Event times are drawn uniformly from [fromMs, toMs). */
  fromMs: number;
  toMs: number;
  size: number;
  /** Share of events reported for the org itself (no subject). */
  orgLevelShare: number;
};

/** Batch `n` of a sequence: orgs in turn, so every org sees batches all along the phase. */
export function makeBatch(r: Rng, ids: EventIds, spec: BatchSpec, n: number): BenchBatch {
  const org = spec.orgs[n % spec.orgs.length];
  if (org === undefined) {
    throw new Error("no orgs to generate events for");
  }
  const events: BenchEvent[] = new Array(spec.size);
  const span = spec.toMs - spec.fromMs;
  for (let i = 0; i < spec.size; i++) {
    const meter = pick(r, spec.meters);
    events[i] = {
      id: ids.take(),
      meter: meter.key,
      projectId: org.projects.length === 0 || r() < spec.orgLevelShare ? null : pick(r, org.projects),
      timeMs: spec.fromMs + Math.floor(r() * span),
      value: meter.value(r),
      model: pick(r, MODELS),
      endpoint: pick(r, ENDPOINTS),
    };
  }
  return { org, events };
}

/** The request body, built as text (ids, meters and properties hold nothing JSON would escape). */
export function toJsonBody(batch: BenchBatch): string {
  const parts: string[] = new Array(batch.events.length);
  for (let i = 0; i < batch.events.length; i++) {
    const e = batch.events[i] as BenchEvent;
    parts[i] =
      `{"id":"${e.id}","type":"${e.meter}",${e.projectId === null ? "" : `"subject":"${e.projectId}",`}` +
      `"time":"${new Date(e.timeMs).toISOString()}","data":{"value":${e.value},` +
      `"model":"${e.model}","endpoint":"${e.endpoint}"}}`;
  }
  return `{"org_id":"${batch.org.id}","events":[${parts.join(",")}]}`;
}

/** A PostgreSQL array literal element: quoted, `"` and `\` escaped; null unquoted. */
function element(value: string | null): string {
  return value === null ? "NULL" : `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function arrayLiteral(values: readonly (string | null)[]): string {
  return `{${values.map(element).join(",")}}`;
}

/**
 * The baseline's parameters: [org_id, ids, project ids, meters, times, values, properties] as text array
 * literals, built before the timing starts so the baseline pays no more client work than it must.
 */
export function toBaselineParams(batch: BenchBatch): string[] {
  const e = batch.events;
  return [
    batch.org.id,
    arrayLiteral(e.map((x) => x.id)),
    arrayLiteral(e.map((x) => x.projectId)),
    arrayLiteral(e.map((x) => x.meter)),
    arrayLiteral(e.map((x) => new Date(x.timeMs).toISOString())),
    arrayLiteral(e.map((x) => x.value)),
    arrayLiteral(e.map((x) => JSON.stringify({ model: x.model, endpoint: x.endpoint }))),
  ];
}

/** The raw-insert baseline: a table with the stored event's columns and the idempotency primary key. */
export function baselineTableSql(table: string): string {
  return (
    `create table ${table} (org_id text not null, event_id text not null, project_id text, key_id text, ` +
    "meter text not null, time timestamptz not null, value numeric not null, unique_value text, " +
    "credits numeric not null, properties jsonb not null, received_at timestamptz not null default now(), " +
    "primary key (org_id, event_id))"
  );
}

export function baselineInsertSql(table: string): string {
  return (
    `insert into ${table} (org_id, event_id, project_id, key_id, meter, time, value, unique_value, credits, properties) ` +
    "select $1, u.id, u.project_id, null, u.meter, u.time, u.value, null, 0, u.properties " +
    "from unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::numeric[], $7::jsonb[]) " +
    "as u(id, project_id, meter, time, value, properties) on conflict do nothing"
  );
}

/** Exact product of two non-negative decimal strings, as a decimal string (credits = value × cost). */
export function multiplyDecimal(a: string, b: string): string {
  const [ai = "0", af = ""] = a.split(".");
  const [bi = "0", bf = ""] = b.split(".");
  const scale = af.length + bf.length;
  const digits = (BigInt(ai + af) * BigInt(bi + bf)).toString().padStart(scale + 1, "0");
  if (scale === 0) {
    return digits;
  }
  const whole = digits.slice(0, digits.length - scale);
  const fraction = digits.slice(digits.length - scale).replace(/0+$/, "");
  return fraction === "" ? whole : `${whole}.${fraction}`;
}

/** The same events as the store takes them: sorted by id, credits = value × the meter's credit cost. */
export function toStoredEvents(batch: BenchBatch, costs: ReadonlyMap<string, string>): StoredUsageEvent[] {
  return batch.events
    .map((e) => ({
      id: e.id,
      projectId: e.projectId,
      keyId: null,
      meter: e.meter,
      time: new Date(e.timeMs),
      value: e.value,
      uniqueValue: null,
      credits: multiplyDecimal(e.value, costs.get(e.meter) ?? "0"),
      properties: { model: e.model, endpoint: e.endpoint },
    }))
    .sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
}
