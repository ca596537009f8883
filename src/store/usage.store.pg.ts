import { type SQL, sql } from "drizzle-orm";
import {
  type GaugeValue,
  MissingUsagePartition,
  type RollupBucket,
  type RollupGranularity,
  type StoredUsageEvent,
  type UniqueCount,
  type UsageStore,
} from "../domain/usage/usage.store.ts";
import type { JsonObject } from "../lib/json.ts";
import type { Executor } from "./db.ts";
import { executePrepared } from "./prepared.ts";

/*
 * The usage tables (migrations 0006_usage.sql and 0007_usage_daily_rollups.sql) are not in src/store/schema/:
 * drizzle-kit cannot express a partitioned table, so everything here is raw SQL through the Executor. Project
 * and key columns of the rollup, unique and gauge tables are part of primary keys, so "none" is stored as ''
 * and read back as null.
 * Timestamps are read as epoch milliseconds (float8) and decimals as text.
 */

/** The partition of the raw events holding `time`'s UTC month. */
export function usagePartitionName(time: Date): string {
  return `usage_events_${time.getUTCFullYear()}_${String(time.getUTCMonth() + 1).padStart(2, "0")}`;
}

const PARTITION_NAME = /^usage_events_(\d{4})_(\d{2})$/;
/** Guards ensurePartitions against a runaway range (a bug elsewhere): 100 years of months. */
const MAX_PARTITIONS_AT_ONCE = 1200;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** PostgreSQL renders numeric with its scale ("12.500"); drop trailing fraction zeros, keep the digits exact. */
function trimDecimal(text: string): string {
  return text.includes(".") ? text.replace(/\.?0+$/, "") : text;
}

function orNull(keyColumn: string): string | null {
  return keyColumn === "" ? null : keyColumn;
}

function iso(date: Date): string {
  return date.toISOString();
}

type PgErrorLike = { code?: unknown; message?: unknown; cause?: unknown };

/** Drizzle wraps driver errors: the SQLSTATE of the first error in the cause chain that has one. */
function pgErrorCode(err: unknown): string | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const e = current as PgErrorLike;
    if (typeof e.code === "string") {
      return e.code;
    }
    current = e.cause;
  }
  return undefined;
}

/** 23514 check_violation is also what routing a row to a partition that does not exist raises. */
function isMissingPartition(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === "object" && current !== null; depth++) {
    const e = current as PgErrorLike;
    if (e.code === "23514" && typeof e.message === "string" && e.message.includes("no partition")) {
      return true;
    }
    current = e.cause;
  }
  return false;
}

/** Another process creating the same partition at the same moment: duplicate table / catalog row. */
const CREATE_RACE_CODES = new Set(["42P07", "23505", "42710"]);

function firstOfMonth(year: number, month: number): Date {
  return new Date(Date.UTC(year, month, 1));
}

/** The bucket of a row whose time column (an hour or a day start) is `column`. */
function bucketExpression(granularity: RollupGranularity, from: Date, column: SQL = sql`hour`): SQL {
  switch (granularity) {
    case "hour":
      return column;
    case "day":
      // UTC days are whole multiples of a day since the epoch: plain arithmetic, no time zone lookup.
      return sql`date_bin('1 day', ${column}, 'epoch')`;
    case "month":
      return sql`date_trunc('month', ${column}, 'UTC')`;
    case "total":
      return sql`${iso(from)}::timestamptz`;
  }
}

type RollupRow = {
  bucket: number;
  meter: string;
  project_id: string;
  key_id: string;
  sum: string;
  count: string;
  max: string;
  last: string;
  last_at: number;
  credits: string;
};

type UniqueRow = {
  bucket: number | null;
  meter: string;
  project_id: string | null;
  key_id: string | null;
  count: string;
};

type GaugeRow = { meter: string; project_id: string; value: string; time: number };

function toGauge(r: GaugeRow): GaugeValue {
  return {
    meter: r.meter,
    projectId: orNull(r.project_id),
    value: trimDecimal(r.value),
    time: new Date(r.time),
  };
}

/**
 * Concurrent batches must take their dedup row locks in one order, and one statement cannot insert an id
 * twice: the caller sorts by id and drops repeats, but one that did not would deadlock or double count, so
 * check (one pass) and repair a copy when needed (stable: the first of a repeated id wins).
 */
function sortedUniqueById(events: readonly StoredUsageEvent[]): readonly StoredUsageEvent[] {
  for (let i = 1; i < events.length; i++) {
    // biome-ignore lint/style/noNonNullAssertion: i and i - 1 are within bounds
    if (events[i - 1]!.id >= events[i]!.id) {
      const sorted = [...events].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return sorted.filter((e, j) => j === 0 || sorted[j - 1]?.id !== e.id);
    }
  }
  return events;
}

export function createUsageStore(db: Executor): UsageStore {
  return {
    async insertBatch(orgId, events, receivedAt, gaugeMeters) {
      if (events.length === 0) {
        return [];
      }
      const sorted = sortedUniqueById(events);
      // The batch travels column by column as JSON arrays, zipped back into rows by ROWS FROM: V8 writes
      // JSON several times faster than the driver builds array literals, and PostgreSQL reads it as fast.
      // Times go as epoch milliseconds, with each event's UTC hour computed here.
      const n = sorted.length;
      const ids = new Array<string>(n);
      const projects = new Array<string | null>(n);
      const keys = new Array<string | null>(n);
      const meters = new Array<string>(n);
      const times = new Array<number>(n);
      const hours = new Array<number>(n);
      const values = new Array<string>(n);
      const uniques = new Array<string | null>(n);
      const credits = new Array<string>(n);
      const properties = new Array<JsonObject>(n);
      const months = new Set<string>();
      let anyUnique = false;
      let anyGauge = false;
      for (let i = 0; i < n; i++) {
        // biome-ignore lint/style/noNonNullAssertion: i < n
        const e = sorted[i]!;
        const ms = e.time.getTime();
        ids[i] = e.id;
        projects[i] = e.projectId;
        keys[i] = e.keyId;
        meters[i] = e.meter;
        times[i] = ms;
        hours[i] = ms - (((ms % HOUR_MS) + HOUR_MS) % HOUR_MS);
        values[i] = e.value;
        uniques[i] = e.uniqueValue;
        credits[i] = e.credits;
        properties[i] = e.properties;
        months.add(usagePartitionName(e.time));
        anyUnique ||= e.uniqueValue !== null;
        anyGauge ||= gaugeMeters.has(e.meter);
      }
      const column = (items: readonly unknown[]) =>
        sql`json_array_elements_text(${JSON.stringify(items)}::json)`;
      const org = sql`${orgId}::text`;
      const received = sql`${iso(receivedAt)}::timestamptz`;

      // One statement: data-modifying CTEs see each other's rows only through RETURNING, so everything
      // downstream of the dedup insert reads `fresh` (the batch's events whose ids were new). A month
      // without a partition makes the dedup insert (hence everything) do nothing and is answered instead of
      // raising an error, so the caller's transaction stays usable.
      const parts: SQL[] = [
        sql`with input as materialized (
          select i collate "C" as event_id, p collate "C" as project_id, k collate "C" as key_id,
            m collate "C" as meter,
            to_timestamp(t::float8 / 1000) as time, to_timestamp(h::float8 / 1000) as hour,
            v::numeric as value, u collate "C" as unique_value, c::numeric as credits, x as properties
          from rows from (${column(ids)}, ${column(projects)}, ${column(keys)}, ${column(meters)},
            ${column(times)}, ${column(hours)}, ${column(values)}, ${column(uniques)}, ${column(credits)},
            jsonb_array_elements(${JSON.stringify(properties)}::jsonb))
            as r(i, p, k, m, t, h, v, u, c, x)
        ),
        missing as (
          select m from unnest(${sql.param([...months])}::text[]) as m where to_regclass(m) is null
        ),
        dedup as (
          insert into usage_dedup (org_id, event_id, received_at)
          select ${org}, event_id, ${received} from input where not exists (select from missing)
          on conflict do nothing
          returning event_id
        ),
        fresh as materialized (
          select input.* from input where event_id in (select event_id from dedup)
        ),
        events as (
          insert into usage_events (org_id, event_id, project_id, key_id, meter, time, value, unique_value,
            credits, properties, received_at)
          select ${org}, event_id, project_id, key_id, meter, time, value, unique_value, credits, properties,
            ${received}
          from fresh
        ),
        hourly as materialized (
          select hour, meter, coalesce(project_id, '') as project_id, coalesce(key_id, '') as key_id,
            sum(value) as sum, count(*) as count, max(value) as max,
            (array_agg(value order by time desc, value desc))[1] as last, max(time) as last_at,
            sum(credits) as credits
          from fresh
          group by 1, 2, 3, 4
        ),
        rollups as (
          insert into usage_rollups as r (org_id, hour, meter, project_id, key_id, sum, count, max, last,
            last_at, credits)
          select ${org}, hour, meter, project_id, key_id, sum, count, max, last, last_at, credits
          from hourly
          order by 2, 3, 4, 5
          on conflict (org_id, hour, meter, project_id, key_id) do update set
            sum = r.sum + excluded.sum,
            count = r.count + excluded.count,
            max = greatest(r.max, excluded.max),
            last = case when (excluded.last_at, excluded.last) > (r.last_at, r.last)
              then excluded.last else r.last end,
            last_at = greatest(r.last_at, excluded.last_at),
            credits = r.credits + excluded.credits
        ),
        daily as (
          insert into usage_rollups_daily as d (org_id, day, meter, project_id, key_id, sum, count, max, last,
            last_at, credits)
          select ${org}, date_bin('1 day', hour, 'epoch'), meter, project_id, key_id, sum(sum), sum(count),
            max(max), (array_agg(last order by last_at desc, last desc))[1], max(last_at), sum(credits)
          from hourly
          group by 2, 3, 4, 5
          order by 2, 3, 4, 5
          on conflict (org_id, day, meter, project_id, key_id) do update set
            sum = d.sum + excluded.sum,
            count = d.count + excluded.count,
            max = greatest(d.max, excluded.max),
            last = case when (excluded.last_at, excluded.last) > (d.last_at, d.last)
              then excluded.last else d.last end,
            last_at = greatest(d.last_at, excluded.last_at),
            credits = d.credits + excluded.credits
        )`,
      ];
      if (anyUnique) {
        parts.push(sql`,
        uniques as (
          insert into usage_uniques (org_id, meter, hour, project_id, key_id, value)
          select distinct ${org}, meter, hour, coalesce(project_id, ''), coalesce(key_id, ''), unique_value
          from fresh where unique_value is not null
          order by 2, 3, 4, 5, 6
          on conflict do nothing
        )`);
      }
      if (anyGauge) {
        parts.push(sql`,
        gauges as (
          insert into usage_gauges as g (org_id, meter, project_id, value, time)
          select distinct on (meter, coalesce(project_id, '')) ${org}, meter, coalesce(project_id, ''), value, time
          from fresh where meter = any(${sql.param([...gaugeMeters])}::text[])
          order by meter, coalesce(project_id, ''), time desc, value desc
          on conflict (org_id, meter, project_id) do update set value = excluded.value, time = excluded.time
          where (excluded.time, excluded.value) > (g.time, g.value)
        )`);
      }
      parts.push(sql`
        select event_id, null::text as missing from dedup
        union all
        select null, m from missing`);

      let answer: { event_id: string | null; missing: string | null }[];
      try {
        const result = await db.execute<{ event_id: string | null; missing: string | null }>(sql.join(parts));
        answer = result.rows;
      } catch (err) {
        // A partition dropped between the check and the insert still lands here.
        if (isMissingPartition(err)) {
          throw new MissingUsagePartition(sorted.map((e) => e.time));
        }
        throw err;
      }
      const inserted: string[] = [];
      for (const row of answer) {
        if (row.missing !== null) {
          throw new MissingUsagePartition(sorted.map((e) => e.time));
        }
        if (row.event_id !== null) {
          inserted.push(row.event_id);
        }
      }
      return inserted;
    },

    async ensurePartitions(from, to) {
      const wanted: { name: string; start: Date; end: Date }[] = [];
      let year = from.getUTCFullYear();
      let month = from.getUTCMonth();
      const last = to.getUTCFullYear() * 12 + to.getUTCMonth();
      if (last - (year * 12 + month) >= MAX_PARTITIONS_AT_ONCE) {
        throw new RangeError(`refusing to create usage partitions from ${iso(from)} to ${iso(to)}`);
      }
      while (year * 12 + month <= last) {
        const start = firstOfMonth(year, month);
        wanted.push({ name: usagePartitionName(start), start, end: firstOfMonth(year, month + 1) });
        month += 1;
        if (month === 12) {
          month = 0;
          year += 1;
        }
      }
      if (wanted.length === 0) {
        return;
      }
      const { rows } = await db.execute<{ name: string }>(
        sql`select name from unnest(${sql.param(wanted.map((w) => w.name))}::text[]) as name
            where to_regclass(name) is null`,
      );
      const missing = new Set(rows.map((r) => r.name));
      for (const w of wanted) {
        if (!missing.has(w.name)) {
          continue;
        }
        try {
          // A savepoint when `db` is a transaction (a lost race must not abort it), a transaction otherwise.
          await db.transaction(async (tx) => {
            await tx.execute(
              sql.raw(
                `create table if not exists "${w.name}" partition of usage_events
                 for values from ('${iso(w.start)}') to ('${iso(w.end)}')`,
              ),
            );
          });
        } catch (err) {
          const code = pgErrorCode(err);
          if (code === undefined || !CREATE_RACE_CODES.has(code)) {
            throw err;
          }
        }
      }
    },

    async dropPartitionsBefore(before) {
      const { rows } = await db.execute<{ name: string }>(
        sql`select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
            where i.inhparent = 'usage_events'::regclass order by 1`,
      );
      const dropped: string[] = [];
      for (const { name } of rows) {
        const match = PARTITION_NAME.exec(name);
        if (match === null) {
          continue;
        }
        const end = firstOfMonth(Number(match[1]), Number(match[2]));
        if (end.getTime() <= before.getTime()) {
          await db.execute(sql.raw(`drop table if exists "${name}"`));
          dropped.push(name);
        }
      }
      return dropped;
    },

    async pruneDedup(before, limit) {
      if (limit <= 0) {
        return 0;
      }
      const { rows } = await db.execute<{ n: number }>(
        sql`with gone as (
              delete from usage_dedup where ctid = any(array(
                select ctid from usage_dedup where received_at < ${iso(before)}::timestamptz
                limit ${Math.floor(limit)}::int))
              returning 1)
            select count(*)::int as n from gone`,
      );
      return rows[0]?.n ?? 0;
    },

    async rollups(query) {
      if (query.meters !== null && query.meters.length === 0) {
        return [];
      }
      const meterFilter =
        query.meters === null ? sql`` : sql`and meter = any(${sql.param([...query.meters])}::text[])`;
      const org = sql`${query.orgId}::text`;
      const hours = (from: number, to: number) =>
        sql`select hour as t, meter, project_id, key_id, sum, count, max, last, last_at, credits
            from usage_rollups where org_id = ${org} and hour >= ${iso(new Date(from))}::timestamptz
              and hour < ${iso(new Date(to))}::timestamptz ${meterFilter}`;
      let rowsQuery: SQL;
      if (query.granularity === "hour") {
        // One range scan of the primary key (org_id, hour, …): hourly buckets are the rows themselves.
        rowsQuery = sql`select (extract(epoch from hour) * 1000)::float8 as bucket, meter, project_id, key_id,
            sum::text, count::text, max::text, last::text,
            (extract(epoch from last_at) * 1000)::float8 as last_at, credits::text
          from usage_rollups where org_id = ${org} and hour >= ${iso(query.from)}::timestamptz
            and hour < ${iso(query.to)}::timestamptz ${meterFilter}
          order by hour, meter, project_id, key_id`;
      } else {
        // Days, months and totals are whole UTC days combined: the range's whole days come from the daily
        // rollups (one row per day instead of 24), the partial days at its edges from the hourly rows; one
        // range scan of each table's primary key per part. A combined bucket's `last` is the last of its
        // latest hour or day: the largest (last_at, last) pair, taken as a plain max over a numeric array
        // (cheaper than an ordered aggregate).
        const fromMs = query.from.getTime();
        const toMs = query.to.getTime();
        const firstDay = Math.ceil(fromMs / DAY_MS) * DAY_MS;
        const endDay = Math.floor(toMs / DAY_MS) * DAY_MS;
        const sources: SQL[] = [];
        if (firstDay < endDay) {
          if (fromMs < firstDay) {
            sources.push(hours(fromMs, firstDay));
          }
          sources.push(
            sql`select day as t, meter, project_id, key_id, sum, count, max, last, last_at, credits
                from usage_rollups_daily where org_id = ${org} and day >= ${iso(new Date(firstDay))}::timestamptz
                  and day < ${iso(new Date(endDay))}::timestamptz ${meterFilter}`,
          );
          if (endDay < toMs) {
            sources.push(hours(endDay, toMs));
          }
        } else {
          sources.push(hours(fromMs, toMs));
        }
        const bucket = bucketExpression(query.granularity, query.from, sql`t`);
        rowsQuery = sql`select (extract(epoch from b) * 1000)::float8 as bucket, meter, project_id, key_id,
            sum::text, count::text, max::text, l[2]::text as last, (l[1] * 1000)::float8 as last_at,
            credits::text
          from (
            select ${bucket} as b, meter, project_id, key_id, sum(sum) as sum, sum(count) as count,
              max(max) as max, max(array[extract(epoch from last_at), last]) as l, sum(credits) as credits
            from (${sql.join(sources, sql` union all `)}) u
            group by 1, 2, 3, 4
          ) g
          order by b, meter, project_id, key_id`;
      }
      const rows = await executePrepared<RollupRow>(db, "usage_rollups", rowsQuery);
      return rows.map(
        (r): RollupBucket => ({
          bucket: new Date(r.bucket),
          meter: r.meter,
          projectId: orNull(r.project_id),
          keyId: orNull(r.key_id),
          sum: trimDecimal(r.sum),
          count: Number(r.count),
          max: trimDecimal(r.max),
          last: trimDecimal(r.last),
          lastAt: new Date(r.last_at),
          credits: trimDecimal(r.credits),
        }),
      );
    },

    async uniqueCounts(query) {
      if (query.meters.length === 0) {
        return [];
      }
      const bucket =
        query.granularity === "total"
          ? sql`null::float8`
          : sql`(extract(epoch from ${bucketExpression(query.granularity, query.from)}) * 1000)::float8`;
      const project = query.byProject ? sql`project_id` : sql`null::text`;
      const key = query.byKey ? sql`key_id` : sql`null::text`;
      const rows = await executePrepared<UniqueRow>(
        db,
        "usage_uniques",
        sql`select ${bucket} as bucket, meter, ${project} as project_id, ${key} as key_id,
              count(distinct value)::text as count
            from usage_uniques
            where org_id = ${query.orgId} and meter = any(${sql.param([...query.meters])}::text[])
              and hour >= ${iso(query.from)}::timestamptz and hour < ${iso(query.to)}::timestamptz
            group by 1, 2, 3, 4
            order by 1, 2, 3, 4`,
      );
      return rows.map(
        (r): UniqueCount => ({
          bucket: r.bucket === null ? null : new Date(r.bucket),
          meter: r.meter,
          projectId: r.project_id === null ? null : orNull(r.project_id),
          keyId: r.key_id === null ? null : orNull(r.key_id),
          count: Number(r.count),
        }),
      );
    },

    async gauges(orgId, meters) {
      if (meters !== null && meters.length === 0) {
        return [];
      }
      const meterFilter = meters === null ? sql`` : sql`and meter = any(${sql.param([...meters])}::text[])`;
      const rows = await executePrepared<GaugeRow>(
        db,
        "usage_gauges",

        sql`select meter, project_id, value::text, (extract(epoch from time) * 1000)::float8 as time
            from usage_gauges where org_id = ${orgId} ${meterFilter}
            order by meter, project_id`,
      );
      return rows.map(toGauge);
    },

    async gaugesBefore(orgId, meters, before) {
      if (meters.length === 0) {
        return [];
      }
      // Hours that end at or before `before` (whole hours: hour < before). A gauge's last report may be
      // long ago, so rather than reading the org's whole history this walks the (org, meter, project, hour)
      // index: a recursive skip from one project to the next per meter, then each pair's latest hour (its
      // largest (last_at, last) over keys).
      const org = sql`${orgId}::text`;
      const end = sql`${iso(before)}::timestamptz - interval '1 hour'`;
      const { rows } = await db.execute<GaugeRow>(
        sql`with recursive pairs(meter, project_id) as (
              select m, (select r.project_id from usage_rollups r
                         where r.org_id = ${org} and r.meter = m and r.hour <= ${end}
                         order by r.project_id limit 1)
              from unnest(${sql.param([...new Set(meters)])}::text[]) as m
              union all
              select p.meter, (select r.project_id from usage_rollups r
                               where r.org_id = ${org} and r.meter = p.meter and r.project_id > p.project_id
                                 and r.hour <= ${end}
                               order by r.project_id limit 1)
              from pairs p where p.project_id is not null
            )
            select p.meter, p.project_id, l.last::text as value,
              (extract(epoch from l.last_at) * 1000)::float8 as time
            from pairs p cross join lateral (
              select r.last, r.last_at from usage_rollups r
              where r.org_id = ${org} and r.meter = p.meter and r.project_id = p.project_id and r.hour <= ${end}
              order by r.hour desc, r.last_at desc, r.last desc limit 1
            ) l
            where p.project_id is not null
            order by p.meter, p.project_id`,
      );
      return rows.map(toGauge);
    },
  };
}
