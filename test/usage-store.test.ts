import { readFileSync } from "node:fs";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type GaugeValue,
  MissingUsagePartition,
  type RollupBucket,
  type RollupGranularity,
  type StoredUsageEvent,
  type UniqueCount,
} from "../src/domain/usage/usage.store.ts";
import { type Database, openDatabase } from "../src/store/db.ts";
import { cloneTemplateDatabase } from "./harness.ts";
import { mulberry32 } from "./util.ts";

/*
 * The PostgreSQL usage store against a real database: the property test feeds random batches (several
 * orgs, projects, keys, meters of every aggregation, times across hours, days and months, duplicates,
 * concurrent batches) and checks that what the rollups answer equals both a full scan of the raw events in
 * plain SQL and a JS model of the accepted events, over ranges whose edges fall on and off UTC day and month
 * boundaries (whole days come from the daily rollups, partial days from the hourly ones), and that the daily
 * rollups are exactly the hourly ones combined per day.
 */

let database: Database;

beforeAll(async () => {
  database = openDatabase({ url: await cloneTemplateDatabase(), poolMax: 12, onPoolError: () => {} });
});

afterAll(async () => {
  await database?.close();
});

// ---------------------------------------------------------------------------------------------------
// Exact decimals for the model: bigints of 10^-30 units (values have ≤ 3 fraction digits, costs ≤ 18).

const SCALE_DIGITS = 30;
const SCALE = 10n ** BigInt(SCALE_DIGITS);

function units(value: string): bigint {
  const [int = "0", frac = ""] = value.split(".");
  if (frac.length > SCALE_DIGITS) {
    throw new RangeError(`too many fraction digits: ${value}`);
  }
  return BigInt(int) * SCALE + BigInt(frac.padEnd(SCALE_DIGITS, "0"));
}

function decimal(u: bigint): string {
  const int = u / SCALE;
  const frac = (u % SCALE).toString().padStart(SCALE_DIGITS, "0").replace(/0+$/, "");
  return frac === "" ? int.toString() : `${int}.${frac}`;
}

function multiply(a: string, b: string): string {
  return decimal((units(a) * units(b)) / SCALE);
}

/** Trailing fraction zeros off, as the store answers decimals. */
function trim(text: string): string {
  return decimal(units(text));
}

// ---------------------------------------------------------------------------------------------------

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const GAUGE_METERS: ReadonlySet<string> = new Set(["seats"]);
const METERS = ["calls", "tokens", "peak", "seats", "visitors"] as const;
type Meter = (typeof METERS)[number];
const COST: Record<Meter, string> = {
  calls: "0",
  tokens: "0.000001234567890123",
  peak: "0.5",
  seats: "0",
  visitors: "0.25",
};

function bucketStart(time: Date, granularity: RollupGranularity, from: Date): number {
  const d = new Date(time);
  switch (granularity) {
    case "hour":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours());
    case "day":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    case "month":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
    case "total":
      return from.getTime();
  }
}

/** Later by time, ties: the larger value. */
function later(a: { time: Date; value: string }, b: { time: Date; value: string }): boolean {
  const dt = a.time.getTime() - b.time.getTime();
  return dt !== 0 ? dt > 0 : units(a.value) > units(b.value);
}

type Comparable = Record<string, string | number | null>;

function rollupRows(rows: readonly RollupBucket[]): Comparable[] {
  return rows
    .map((r) => ({
      bucket: r.bucket.toISOString(),
      meter: r.meter,
      projectId: r.projectId,
      keyId: r.keyId,
      sum: r.sum,
      count: r.count,
      max: r.max,
      last: r.last,
      lastAt: r.lastAt.toISOString(),
      credits: r.credits,
    }))
    .sort(byKey);
}

function uniqueRows(rows: readonly UniqueCount[]): Comparable[] {
  return rows
    .map((r) => ({
      bucket: r.bucket === null ? null : r.bucket.toISOString(),
      meter: r.meter,
      projectId: r.projectId,
      keyId: r.keyId,
      count: r.count,
    }))
    .sort(byKey);
}

function gaugeRows(rows: readonly GaugeValue[]): Comparable[] {
  return rows
    .map((r) => ({ meter: r.meter, projectId: r.projectId, value: r.value, time: r.time.toISOString() }))
    .sort(byKey);
}

function byKey(a: Comparable, b: Comparable): number {
  const ka = JSON.stringify([a.bucket, a.meter, a.projectId, a.keyId]);
  const kb = JSON.stringify([b.bucket, b.meter, b.projectId, b.keyId]);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

type ModelEvent = StoredUsageEvent & { orgId: string };

function modelRollups(
  events: readonly ModelEvent[],
  q: {
    orgId: string;
    from: Date;
    to: Date;
    granularity: RollupGranularity;
    meters: readonly string[] | null;
  },
): Comparable[] {
  const groups = new Map<string, ModelEvent[]>();
  for (const e of events) {
    if (
      e.orgId !== q.orgId ||
      e.time < q.from ||
      e.time >= q.to ||
      (q.meters !== null && !q.meters.includes(e.meter))
    ) {
      continue;
    }
    const key = JSON.stringify([bucketStart(e.time, q.granularity, q.from), e.meter, e.projectId, e.keyId]);
    const list = groups.get(key) ?? [];
    list.push(e);
    groups.set(key, list);
  }
  return [...groups.entries()]
    .map(([key, list]) => {
      const [bucket, meter, projectId, keyId] = JSON.parse(key) as [
        number,
        string,
        string | null,
        string | null,
      ];
      let latest = list[0] as ModelEvent;
      let max = 0n;
      let sum = 0n;
      let credits = 0n;
      for (const e of list) {
        sum += units(e.value);
        credits += units(e.credits);
        max = units(e.value) > max ? units(e.value) : max;
        latest = later(e, latest) ? e : latest;
      }
      return {
        bucket: new Date(bucket).toISOString(),
        meter,
        projectId,
        keyId,
        sum: decimal(sum),
        count: list.length,
        max: decimal(max),
        last: trim(latest.value),
        lastAt: latest.time.toISOString(),
        credits: decimal(credits),
      };
    })
    .sort(byKey);
}

function modelUniques(
  events: readonly ModelEvent[],
  q: {
    orgId: string;
    from: Date;
    to: Date;
    granularity: RollupGranularity;
    meters: readonly string[];
    byProject: boolean;
    byKey: boolean;
  },
): Comparable[] {
  const groups = new Map<string, Set<string>>();
  for (const e of events) {
    if (e.orgId !== q.orgId || e.time < q.from || e.time >= q.to || !q.meters.includes(e.meter)) {
      continue;
    }
    if (e.uniqueValue === null) {
      continue;
    }
    const bucket = q.granularity === "total" ? null : bucketStart(e.time, q.granularity, q.from);
    const key = JSON.stringify([bucket, e.meter, q.byProject ? e.projectId : null, q.byKey ? e.keyId : null]);
    const set = groups.get(key) ?? new Set<string>();
    set.add(e.uniqueValue);
    groups.set(key, set);
  }
  return [...groups.entries()]
    .map(([key, set]) => {
      const [bucket, meter, projectId, keyId] = JSON.parse(key) as [
        number | null,
        string,
        string | null,
        string | null,
      ];
      return {
        bucket: bucket === null ? null : new Date(bucket).toISOString(),
        meter,
        projectId,
        keyId,
        count: set.size,
      };
    })
    .sort(byKey);
}

/** Per (meter, project): the latest event (ties: larger value) among `events` passing `keep`. */
function modelLatest(events: readonly ModelEvent[], keep: (e: ModelEvent) => boolean): Comparable[] {
  const latest = new Map<string, ModelEvent>();
  for (const e of events) {
    if (!keep(e)) {
      continue;
    }
    const key = JSON.stringify([e.meter, e.projectId]);
    const current = latest.get(key);
    if (current === undefined || later(e, current)) {
      latest.set(key, e);
    }
  }
  return [...latest.values()]
    .map((e) => ({
      meter: e.meter,
      projectId: e.projectId,
      value: trim(e.value),
      time: e.time.toISOString(),
    }))
    .sort(byKey);
}

// ---------------------------------------------------------------------------------------------------
// The same answers computed by plain SQL over the raw events (a full scan, no rollups).

function sqlBucket(granularity: RollupGranularity, from: Date) {
  return granularity === "total"
    ? sql`${from.toISOString()}::timestamptz`
    : sql`date_trunc(${granularity}, time, 'UTC')`;
}

async function scanRollups(q: {
  orgId: string;
  from: Date;
  to: Date;
  granularity: RollupGranularity;
  meters: readonly string[] | null;
}): Promise<Comparable[]> {
  const { rows } = await database.db.execute<{
    bucket: string;
    meter: string;
    project_id: string | null;
    key_id: string | null;
    sum: string;
    count: number;
    max: string;
    last: string;
    last_at: string;
    credits: string;
  }>(sql`select to_json(${sqlBucket(q.granularity, q.from)}) #>> '{}' as bucket, meter, project_id, key_id,
           sum(value)::text as sum, count(*)::int as count, max(value)::text as max,
           (array_agg(value order by time desc, value desc))[1]::text as last,
           to_json(max(time)) #>> '{}' as last_at, sum(credits)::text as credits
         from usage_events
         where org_id = ${q.orgId} and time >= ${q.from.toISOString()}::timestamptz
           and time < ${q.to.toISOString()}::timestamptz
           and (${q.meters === null} or meter = any(${sql.param(q.meters ?? [])}::text[]))
         group by 1, 2, 3, 4`);
  return rows
    .map((r) => ({
      bucket: new Date(r.bucket).toISOString(),
      meter: r.meter,
      projectId: r.project_id,
      keyId: r.key_id,
      sum: trim(r.sum),
      count: r.count,
      max: trim(r.max),
      last: trim(r.last),
      lastAt: new Date(r.last_at).toISOString(),
      credits: trim(r.credits),
    }))
    .sort(byKey);
}

async function scanUniques(q: {
  orgId: string;
  from: Date;
  to: Date;
  granularity: RollupGranularity;
  meters: readonly string[];
  byProject: boolean;
  byKey: boolean;
}): Promise<Comparable[]> {
  const bucket =
    q.granularity === "total" ? sql`null::text` : sql`to_json(${sqlBucket(q.granularity, q.from)}) #>> '{}'`;
  const { rows } = await database.db.execute<{
    bucket: string | null;
    meter: string;
    project_id: string | null;
    key_id: string | null;
    count: number;
  }>(sql`select ${bucket} as bucket, meter,
           case when ${q.byProject} then project_id end as project_id,
           case when ${q.byKey} then key_id end as key_id,
           count(distinct unique_value)::int as count
         from usage_events
         where org_id = ${q.orgId} and time >= ${q.from.toISOString()}::timestamptz
           and time < ${q.to.toISOString()}::timestamptz and unique_value is not null
           and meter = any(${sql.param(q.meters)}::text[])
         group by 1, 2, 3, 4`);
  return rows
    .map((r) => ({
      bucket: r.bucket === null ? null : new Date(r.bucket).toISOString(),
      meter: r.meter,
      projectId: r.project_id,
      keyId: r.key_id,
      count: r.count,
    }))
    .sort(byKey);
}

async function scanLatest(
  orgId: string,
  meters: readonly string[],
  before: Date | null,
): Promise<Comparable[]> {
  const { rows } = await database.db.execute<{
    meter: string;
    project_id: string | null;
    value: string;
    time: string;
  }>(sql`select distinct on (meter, project_id) meter, project_id, value::text as value,
           to_json(time) #>> '{}' as time
         from usage_events
         where org_id = ${orgId} and meter = any(${sql.param(meters)}::text[])
           and (${before === null} or time < ${(before ?? new Date(0)).toISOString()}::timestamptz)
         order by meter, project_id, time desc, usage_events.value desc`);
  return rows
    .map((r) => ({
      meter: r.meter,
      projectId: r.project_id,
      value: trim(r.value),
      time: new Date(r.time).toISOString(),
    }))
    .sort(byKey);
}

// ---------------------------------------------------------------------------------------------------

/** What the usage service does: one transaction per batch; a missing partition is created, then retried. */
async function ingest(orgId: string, events: readonly StoredUsageEvent[], receivedAt = new Date()) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await database.transactor.transaction((stores) =>
        stores.usage.insertBatch(orgId, events, receivedAt, GAUGE_METERS),
      );
    } catch (err) {
      if (!(err instanceof MissingUsagePartition) || attempt > 2) {
        throw err;
      }
      const times = err.times.map((t) => t.getTime());
      await database.stores.usage.ensurePartitions(
        new Date(Math.min(...times)),
        new Date(Math.max(...times)),
      );
    }
  }
}

function sortById<T extends { id: string }>(events: T[]): T[] {
  return events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function event(
  id: string,
  time: string,
  value = "1",
  extra: Partial<StoredUsageEvent> = {},
): StoredUsageEvent {
  return {
    id,
    projectId: null,
    keyId: null,
    meter: "calls",
    time: new Date(time),
    value,
    uniqueValue: null,
    credits: "0",
    properties: {},
    ...extra,
  };
}

async function count(query: ReturnType<typeof sql>): Promise<number> {
  const { rows } = await database.db.execute<{ n: number }>(query);
  return rows[0]?.n ?? -1;
}

describe("usage store (PostgreSQL)", () => {
  it("property: rollups, unique counts and gauges equal a full scan of the raw events and a JS model", async () => {
    const seed = Number(process.env.USAGE_SEED ?? Date.now() % 1_000_000);
    const random = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const orgs = ["org_p1", "org_p2", "org_p3"];
    const projects = [null, "prj_a", "prj_b"];
    const keys = [null, "key_a", "key_b"];
    // Event times: a pool of minutes across three months (Sept 28 to Nov 3, 2026), so ties happen.
    const start = Date.UTC(2026, 8, 28);
    const span = 36 * 24 * HOUR;
    const minutes = Array.from(
      { length: 400 },
      () => start + Math.floor(random() * (span / 60_000)) * 60_000,
    );
    const value = (): string => {
      const r = random();
      if (r < 0.1) {
        return "0";
      }
      if (r < 0.15) {
        return "123456789012.125";
      }
      const int = Math.floor(random() * 1000);
      const digits = Math.floor(random() * 4);
      return digits === 0
        ? String(int)
        : `${int}.${String(Math.floor(random() * 10 ** digits)).padStart(digits, "0")}`;
    };
    const makeEvent = (orgId: string, id: string): ModelEvent => {
      const meter = pick(METERS);
      const v = meter === "visitors" ? "1" : meter === "calls" && random() < 0.5 ? "1" : value();
      return {
        orgId,
        id,
        projectId: pick(projects),
        keyId: pick(keys),
        meter,
        time: new Date(pick(minutes) + Math.floor(random() * 3) * 1000),
        value: v,
        uniqueValue: meter === "visitors" ? `v${Math.floor(random() * 12)}` : null,
        credits: multiply(v, COST[meter]),
        properties: { n: Math.floor(random() * 10), s: pick(["a", 'q"uote', "back\\slash"]) },
      };
    };

    const stored: ModelEvent[] = [];
    const newIds = new Map<string, number>();
    let offered = 0;
    for (let wave = 0; wave < 12; wave++) {
      const batches: { orgId: string; events: ModelEvent[] }[] = [];
      const concurrent = 1 + Math.floor(random() * 4);
      for (let b = 0; b < concurrent; b++) {
        const orgId = pick(orgs);
        const size = 1 + Math.floor(random() * 300);
        const byId = new Map<string, ModelEvent>();
        for (let i = 0; i < size; i++) {
          // Ids from a pool: duplicates within the same batch (first wins, as the service drops the
          // rest), across batches and across concurrent batches.
          const id = `e${Math.floor(random() * 1500)}`;
          if (!byId.has(id)) {
            byId.set(id, makeEvent(orgId, id));
          }
        }
        offered += byId.size;
        batches.push({ orgId, events: sortById([...byId.values()]) });
      }
      const results = await Promise.all(batches.map((b) => ingest(b.orgId, b.events)));
      results.forEach((ids, i) => {
        const batch = batches[i] as (typeof batches)[number];
        const inBatch = new Map(batch.events.map((e) => [e.id, e]));
        for (const id of ids) {
          const key = `${batch.orgId}/${id}`;
          newIds.set(key, (newIds.get(key) ?? 0) + 1);
          stored.push(inBatch.get(id) as ModelEvent);
        }
      });
    }
    // Every (org, id) accepted exactly once; some were duplicates.
    expect(
      [...newIds.values()].every((n) => n === 1),
      `seed ${seed}`,
    ).toBe(true);
    expect(stored.length).toBeLessThan(offered);
    expect(await count(sql`select count(*)::int as n from usage_events`)).toBe(stored.length);
    expect(await count(sql`select count(*)::int as n from usage_dedup`)).toBe(stored.length);
    expect(
      await count(
        sql`select count(*)::int as n from (select org_id, event_id from usage_events group by 1, 2 having count(*) > 1) d`,
      ),
    ).toBe(0);

    // The daily rollups are the hourly ones combined per UTC day, row for row: the same statement that
    // fills them from the hourly rows when the migration runs answers exactly what ingestion wrote.
    const migration = readFileSync(
      new URL("../src/store/migrations/0007_usage_daily_rollups.sql", import.meta.url),
      "utf8",
    );
    const backfill = migration.slice(migration.lastIndexOf("SELECT")).replace(/;\s*$/, "");
    const daily = sql`select org_id, day, meter, project_id, key_id, sum, count, max, last, last_at, credits
                      from usage_rollups_daily`;
    const combined = sql.raw(backfill);
    expect(await count(sql`select count(*)::int as n from usage_rollups_daily`)).toBeGreaterThan(0);
    expect(await count(sql`select count(*)::int as n from usage_rollups_daily`), `seed ${seed}`).toBe(
      await count(sql`select count(*)::int as n from (${combined}) c`),
    );
    expect(
      await count(sql`select count(*)::int as n from ((${daily}) except all (${combined})) d`),
      `seed ${seed}`,
    ).toBe(0);
    expect(
      await count(sql`select count(*)::int as n from ((${combined}) except all (${daily})) d`),
      `seed ${seed}`,
    ).toBe(0);

    const from0 = Date.UTC(2026, 8, 27);
    const hours = (span + 3 * 24 * HOUR) / HOUR;
    const days = hours / 24;
    const granularities: RollupGranularity[] = ["hour", "day", "month", "total"];
    /** A whole hour in the data's span: on a day boundary, at 01:00 (a billing period's start) or anywhere. */
    const edge = (): number => {
      const day = from0 + Math.floor(random() * days) * DAY;
      const r = random();
      return day + (r < 0.25 ? 0 : r < 0.5 ? HOUR : r < 0.6 ? 23 * HOUR : Math.floor(random() * 24) * HOUR);
    };
    for (let q = 0; q < 60; q++) {
      const orgId = pick(orgs);
      const a = from0 + Math.floor(random() * hours) * HOUR;
      let from: Date;
      let to: Date;
      if (q % 6 === 0) {
        // Everything.
        from = new Date(from0);
        to = new Date(from0 + hours * HOUR);
      } else if (q % 6 === 1) {
        // Within one day, or across one midnight without a whole day in between.
        const start = edge();
        from = new Date(start);
        to = new Date(start + (1 + Math.floor(random() * 30)) * HOUR);
      } else if (q % 6 === 2) {
        // A billing month: 01:00 of one day to 01:00 of the same day a month later (multi-month buckets).
        const start = Date.UTC(2026, 8, 28 + Math.floor(random() * 6), 1);
        from = new Date(start);
        to = new Date(start + (30 + Math.floor(random() * 2)) * DAY);
      } else {
        const b = edge();
        const c = edge();
        from = new Date(Math.min(b, c));
        to = new Date(Math.max(b, c) + (b === c ? HOUR : 0));
      }
      const meters = random() < 0.4 ? null : METERS.filter(() => random() < 0.6);
      for (const granularity of granularities) {
        const query = { orgId, from, to, granularity, meters };
        const context = `seed ${seed}, query ${JSON.stringify(query)}`;
        const got = rollupRows(await database.stores.usage.rollups(query));
        expect(got, context).toEqual(await scanRollups(query));
        expect(got, context).toEqual(modelRollups(stored, query));
      }

      const granularity = granularities[q % granularities.length] as RollupGranularity;
      const query = { orgId, from, to, granularity, meters };
      const context = `seed ${seed}, query ${JSON.stringify(query)}`;
      const uq = {
        ...query,
        meters: ["visitors", ...(random() < 0.3 ? ["calls"] : [])],
        byProject: random() < 0.5,
        byKey: random() < 0.5,
      };
      const uniques = uniqueRows(await database.stores.usage.uniqueCounts(uq));
      expect(uniques, context).toEqual(await scanUniques(uq));
      expect(uniques, context).toEqual(modelUniques(stored, uq));

      const before = new Date(a);
      const carried = gaugeRows(await database.stores.usage.gaugesBefore(orgId, ["seats", "peak"], before));
      expect(carried, context).toEqual(await scanLatest(orgId, ["seats", "peak"], before));
      expect(carried, context).toEqual(
        modelLatest(
          stored,
          (e) => e.orgId === orgId && (e.meter === "seats" || e.meter === "peak") && e.time < before,
        ),
      );
    }
    for (const orgId of orgs) {
      const gauges = gaugeRows(await database.stores.usage.gauges(orgId, null));
      expect(gauges, `seed ${seed}`).toEqual(await scanLatest(orgId, [...GAUGE_METERS], null));
      expect(gauges, `seed ${seed}`).toEqual(
        modelLatest(stored, (e) => e.orgId === orgId && GAUGE_METERS.has(e.meter)),
      );
      expect(await database.stores.usage.gauges(orgId, ["calls"])).toEqual([]);
    }
    // Credits with more than 18 fraction digits come back exact (value × cost has up to 21).
    const credits = (
      await database.stores.usage.rollups({
        orgId: "org_p1",
        from: new Date(from0),
        to: new Date(from0 + hours * HOUR),
        granularity: "total",
        meters: ["tokens"],
      })
    ).map((r) => r.credits);
    expect(
      credits.some((c) => (c.split(".")[1] ?? "").length > 18),
      `seed ${seed}`,
    ).toBe(true);
  });

  it("stores each event once across 10 concurrent overlapping batches, without deadlocking", async () => {
    const orgId = "org_concurrent";
    const time = "2026-11-10T10:15:00.000Z";
    await database.stores.usage.ensurePartitions(new Date(time), new Date(time));
    // Batch i holds ids i*50 … i*50+199: each overlaps the next three; every batch touches the same
    // rollup, unique and gauge rows.
    const batches = Array.from({ length: 10 }, (_, i) =>
      sortById(
        Array.from({ length: 200 }, (_, j) => {
          const n = i * 50 + j;
          return event(`ev_${String(n).padStart(4, "0")}`, time, "2", {
            meter: pick3(n),
            projectId: n % 2 === 0 ? "prj_x" : null,
            keyId: n % 3 === 0 ? "key_x" : null,
            uniqueValue: pick3(n) === "visitors" ? `u${n % 7}` : null,
          });
        }),
      ),
    );
    const results = await Promise.all(batches.map((events) => ingest(orgId, events)));
    const all = results.flat();
    const distinct = 9 * 50 + 200;
    expect(all.length).toBe(distinct);
    expect(new Set(all).size).toBe(distinct);
    expect(await count(sql`select count(*)::int as n from usage_events where org_id = ${orgId}`)).toBe(
      distinct,
    );
    const rollups = await database.stores.usage.rollups({
      orgId,
      from: new Date("2026-11-10T10:00:00Z"),
      to: new Date("2026-11-10T11:00:00Z"),
      granularity: "total",
      meters: null,
    });
    expect(rollups.reduce((n, r) => n + r.count, 0)).toBe(distinct);
    expect(rollups.every((r) => r.sum === String(2 * r.count))).toBe(true);

    // The same batches again: all duplicates.
    const again = await Promise.all(batches.map((events) => ingest(orgId, events)));
    expect(again.flat()).toEqual([]);
  });

  it("answers duplicates across batches and keeps the first event", async () => {
    const orgId = "org_dups";
    const t = "2026-11-11T00:30:00.000Z";
    expect(await ingest(orgId, [event("a", t, "5"), event("b", t, "7")])).toEqual(["a", "b"]);
    expect(await ingest(orgId, [event("a", t, "100"), event("c", t, "1")])).toEqual(["c"]);
    // Another org may use the same ids.
    expect(await ingest("org_dups_other", [event("a", t, "3")])).toEqual(["a"]);
    const [bucket] = await database.stores.usage.rollups({
      orgId,
      from: new Date("2026-11-11T00:00:00Z"),
      to: new Date("2026-11-12T00:00:00Z"),
      granularity: "day",
      meters: ["calls"],
    });
    expect(bucket).toMatchObject({ sum: "13", count: 3, max: "7", last: "7", projectId: null, keyId: null });
    // A repeated id within a batch counts once (the first wins).
    expect(await ingest(orgId, [event("x", t, "1"), event("x", t, "50")])).toEqual(["x"]);
    expect(
      await count(sql`select value::int as n from usage_events where org_id = ${orgId} and event_id = 'x'`),
    ).toBe(1);
    // Unsorted input is sorted by the store (lock order), and unknown events answer nothing.
    expect(await ingest(orgId, [event("z", t), event("d", t)])).toEqual(["d", "z"]);
    expect(await ingest(orgId, [])).toEqual([]);
  });

  it("throws MissingUsagePartition for a month without a partition, leaving the transaction usable", async () => {
    const orgId = "org_partition";
    const events = [event("p1", "2031-03-05T12:00:00.000Z"), event("p2", "2031-04-01T00:00:00.000Z")];
    const outcome = await database.transactor.transaction(async (stores) => {
      const err = await stores.usage.insertBatch(orgId, events, new Date(), GAUGE_METERS).catch((e) => e);
      // Nothing was written, and the transaction can go on (an aborted one would fail this query).
      const gauges = await stores.usage.gauges(orgId, null);
      return { err, ok: gauges.length === 0 };
    });
    expect(outcome.ok).toBe(true);
    expect(outcome.err).toBeInstanceOf(MissingUsagePartition);
    expect((outcome.err as MissingUsagePartition).times.map((t) => t.toISOString()).sort()).toEqual([
      "2031-03-05T12:00:00.000Z",
      "2031-04-01T00:00:00.000Z",
    ]);
    expect(await count(sql`select count(*)::int as n from usage_dedup where org_id = ${orgId}`)).toBe(0);

    // Two processes creating the same partitions at once.
    await Promise.all([
      database.stores.usage.ensurePartitions(
        new Date("2031-03-05T12:00:00Z"),
        new Date("2031-04-01T00:00:00Z"),
      ),
      database.stores.usage.ensurePartitions(
        new Date("2031-03-01T00:00:00Z"),
        new Date("2031-04-30T00:00:00Z"),
      ),
      database.transactor.transaction((s) =>
        s.usage.ensurePartitions(new Date("2031-04-01T00:00:00Z"), new Date("2031-04-01T00:00:00Z")),
      ),
    ]);
    expect(
      await database.transactor.transaction((s) =>
        s.usage.insertBatch(orgId, events, new Date(), GAUGE_METERS),
      ),
    ).toEqual(["p1", "p2"]);
    await database.stores.usage.ensurePartitions(
      new Date("2031-03-01T00:00:00Z"),
      new Date("2031-04-30T00:00:00Z"),
    );

    // A partition by the right name but not covering the event (as if dropped under our feet) is the
    // PostgreSQL error, turned into the same exception.
    await database.db.execute(
      sql.raw(`create table usage_events_2031_06 partition of usage_events
               for values from ('2031-07-01T00:00:00Z') to ('2031-08-01T00:00:00Z')`),
    );
    await expect(
      database.transactor.transaction((s) =>
        s.usage.insertBatch(orgId, [event("p3", "2031-06-02T00:00:00Z")], new Date(), GAUGE_METERS),
      ),
    ).rejects.toBeInstanceOf(MissingUsagePartition);
  });

  it("drops whole months strictly before a date", async () => {
    await database.stores.usage.ensurePartitions(
      new Date("2001-01-15T00:00:00Z"),
      new Date("2001-05-02T00:00:00Z"),
    );
    await ingest("org_old", [event("old1", "2001-02-03T00:00:00Z"), event("old2", "2001-04-03T00:00:00Z")]);
    // March ends on April 1st: dropped; April is not over on April 15th: kept.
    expect(await database.stores.usage.dropPartitionsBefore(new Date("2001-04-15T00:00:00Z"))).toEqual([
      "usage_events_2001_01",
      "usage_events_2001_02",
      "usage_events_2001_03",
    ]);
    expect(await count(sql`select count(*)::int as n from usage_events where org_id = 'org_old'`)).toBe(1);
    expect(await database.stores.usage.dropPartitionsBefore(new Date("2001-04-15T00:00:00Z"))).toEqual([]);
    expect(await database.stores.usage.dropPartitionsBefore(new Date("2001-05-01T00:00:00Z"))).toEqual([
      "usage_events_2001_04",
    ]);
    const { rows } = await database.db.execute<{ name: string }>(
      sql`select relname as name from pg_class where relname like 'usage_events_2001_%' order by 1`,
    );
    expect(rows.map((r) => r.name)).toEqual(["usage_events_2001_05"]);
  });

  it("prunes dedup records received before a date, at most `limit` at a time", async () => {
    const orgId = "org_prune";
    const t = "2026-11-12T05:00:00.000Z";
    const old = new Date("2026-10-01T00:00:00Z");
    const recent = new Date("2026-11-12T05:00:00Z");
    await ingest(
      orgId,
      ["a", "b", "c", "d", "e"].map((id) => event(id, t)),
      old,
    );
    await ingest(orgId, [event("f", t)], recent);
    const cutoff = new Date("2026-10-15T00:00:00Z");
    const before = await count(sql`select count(*)::int as n from usage_dedup`);
    expect(await database.stores.usage.pruneDedup(cutoff, 3)).toBe(3);
    expect(await database.stores.usage.pruneDedup(cutoff, 3)).toBe(2);
    expect(await database.stores.usage.pruneDedup(cutoff, 3)).toBe(0);
    expect(await count(sql`select count(*)::int as n from usage_dedup`)).toBe(before - 5);
    // A pruned id is new again; a kept one is still a duplicate.
    expect(await ingest(orgId, [event("a", t), event("f", t)])).toEqual(["a"]);
  });
});

function pick3(n: number): string {
  return ["calls", "seats", "visitors"][n % 3] as string;
}
