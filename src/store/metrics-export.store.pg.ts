import { type SQL, sql } from "drizzle-orm";
import type pg from "pg";
import { creditPeriodOf } from "../domain/alerts/alert-period.ts";
import type { MeterAggregation } from "../domain/catalog/catalog.types.ts";
import type { Executor } from "./db.ts";
import { executePrepared } from "./prepared.ts";

/*
 * The database side of the per-organization metrics (docs/integrations.md, "Metrics (Prometheus)"): read-only,
 * raw SQL over the existing tables, and set-based — one statement per kind of figure for a whole batch of
 * organizations, never one per organization, so exporting 10,000 organizations costs a few dozen statements
 * per refresh. Every statement is bounded by the organization ids it is given (`= any($ids)`).
 */

/** Organizations read per statement: keeps each one's parameters and result a few MB at most. */
const ORGS_PER_STATEMENT = 1000;
/** The `project` label of an organization's usage is bounded: these many projects by use, the rest summed. */
export const MAX_PROJECTS_PER_ORG = 20;
/** The `project` label value of the projects past the first MAX_PROJECTS_PER_ORG. */
export const OTHER_PROJECTS = "_other";
/** Webhook delivery figures cover the deliveries finished in this window (the usage view's 7 days). */
const WEBHOOK_WINDOW_MS = 7 * 86_400_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export type MeterInfo = { key: string; aggregation: MeterAggregation; quota: string | null };

/** One organization's figures read from the database. Decimals are converted to float (metrics, not billing). */
export type OrgFigures = {
  orgId: string;
  /** null: the organization has no credit account yet. */
  credits: { balance: number; periodUsed: number } | null;
  /** The current billing period's aggregate per meter and project (`""`: reported for the org itself). */
  usage: { meter: string; project: string; value: number }[];
  /** used ÷ limit of every quota the plan limits (a number above 0). */
  quotas: { quota: string; used: number; limit: number }[];
  /** Deliveries finished in the last 7 days, by how they ended. */
  webhooks: { delivered: number; failed: number };
};

export type MetricsExportStore = {
  /** The figures of every organization in `orgIds` that exists (has a subscription), in no particular order. */
  readFigures(orgIds: readonly string[], now: Date): Promise<OrgFigures[]>;
};

/** A plan version's quota limits (its definition's `quotas`); null for none. */
type PlanQuotas = Record<string, number | null> | null;
type SubscriptionRow = {
  org_id: string;
  period_start: number;
  anchor: number;
  plan_version_id: string;
  balance: number | null;
  period_used: number | null;
  credit_period_end: number | null;
};
type RollupRow = {
  org_id: string;
  meter: string;
  project_id: string;
  sum: number;
  count: number;
  max: number;
};
type UniqueRow = { org_id: string; meter: string; project_id: string | null; n: number };
type GaugeRow = { org_id: string; meter: string; project_id: string; value: number };
type CountRow = { org_id: string; quota: string; n: number };
type WebhookRow = { org_id: string; delivered: number; failed: number };

function ids(values: readonly string[]): SQL {
  return sql`${sql.param([...values])}::text[]`;
}

function times(values: readonly number[]): SQL {
  return sql`${sql.param(values.map((v) => new Date(v).toISOString()))}::timestamptz[]`;
}

/** A (meter, project) aggregate being combined. */
type Cell = { sum: number; count: number; max: number; last: number; unique: number };

function aggregateOf(cell: Cell, aggregation: MeterAggregation): number {
  switch (aggregation) {
    case "sum":
      return cell.sum;
    case "count":
      return cell.count;
    case "max":
      return cell.max;
    case "last":
      return cell.last;
    case "unique_count":
      return cell.unique;
  }
}

export function createMetricsExportStore(db: Executor, meters: readonly MeterInfo[]): MetricsExportStore {
  const meterByKey = new Map(meters.map((m) => [m.key, m]));
  /**
   * Plan versions' quotas by id, each read once: a version's definition is never changed once written (a new
   * definition is a new version), while a batch of 200 organizations names only a handful of versions. Reading
   * the definition with every subscription row took more than half of that statement's time (measured idle on
   * the bench's 10,000 organizations: 1.36 ms a batch with it, 0.55 without).
   */
  const planQuotas = new Map<string, PlanQuotas>();

  /**
   * Named prepared statements: each shape below takes its organizations as array parameters, so its text is
   * the same on every call and PostgreSQL plans it once per connection (about 10,000 organizations a minute
   * are read in batches of 200).
   */
  function rows<T extends pg.QueryResultRow>(query: SQL): Promise<T[]> {
    return executePrepared<T>(db, "metrics_figures", query);
  }

  async function quotasOf(planVersionIds: Iterable<string>): Promise<void> {
    const missing = [...new Set(planVersionIds)].filter((id) => !planQuotas.has(id));
    if (missing.length === 0) {
      return;
    }
    for (const row of await rows<{ id: string; quotas: PlanQuotas }>(sql`
      select id, definition -> 'quotas' as quotas from plan_versions where id = any(${ids(missing)})`)) {
      planQuotas.set(row.id, row.quotas);
    }
  }

  async function readBatch(orgIds: readonly string[], now: Date): Promise<OrgFigures[]> {
    // The subscription decides the period (the credit period, as GET …/usage and the quotas use it) and the
    // plan's quota limits; the credit account its balance. An organization without a subscription does not exist.
    const subscriptions = await rows<SubscriptionRow>(sql`
      select s.org_id, (extract(epoch from s.current_period_start) * 1000)::float8 as period_start,
        s.billing_anchor_day as anchor, s.plan_version_id,
        ca.balance::float8 as balance, ca.period_used::float8 as period_used,
        (extract(epoch from ca.period_end) * 1000)::float8 as credit_period_end
      from unnest(${ids(orgIds)}) as o(id)
      join subscriptions s on s.org_id = o.id
      left join credit_accounts ca on ca.org_id = o.id`);
    if (subscriptions.length === 0) {
      return [];
    }
    await quotasOf(subscriptions.map((s) => s.plan_version_id));
    const found = subscriptions.map((s) => s.org_id);
    // Each organization's period as whole hours (as the usage report reads it), split into the whole UTC days
    // read from the daily rollups and the partial days at its edges read from the hourly ones.
    const from: number[] = [];
    const firstDay: number[] = [];
    const endDay: number[] = [];
    const to: number[] = [];
    for (const s of subscriptions) {
      const period = creditPeriodOf(
        { currentPeriodStart: new Date(s.period_start), billingAnchorDay: s.anchor },
        now,
      );
      const f = Math.floor(period.start.getTime() / HOUR_MS) * HOUR_MS;
      const t = Math.ceil(period.end.getTime() / HOUR_MS) * HOUR_MS;
      const d1 = Math.ceil(f / DAY_MS) * DAY_MS;
      const d2 = Math.floor(t / DAY_MS) * DAY_MS;
      // Without a whole day inside, the hourly part [from, d1) covers everything and the rest is empty.
      const whole = d1 < d2;
      from.push(f);
      firstDay.push(whole ? d1 : t);
      endDay.push(whole ? d2 : t);
      to.push(t);
    }
    const ranges = sql`unnest(${ids(found)}, ${times(from)}, ${times(firstDay)}, ${times(endDay)}, ${times(to)})
      as r(org_id, from_h, first_day, end_day, to_h)`;
    const nowText = now.toISOString();
    const since = new Date(now.getTime() - WEBHOOK_WINDOW_MS).toISOString();
    const [rollups, uniques, gauges, counts, webhooks] = await Promise.all([
      rows<RollupRow>(sql`
        select org_id, meter, project_id, sum(sum)::float8 as sum, sum(count)::float8 as count,
          max(max)::float8 as max
        from (
          select h.org_id, h.meter, h.project_id, h.sum, h.count, h.max from ${ranges}
            join usage_rollups h on h.org_id = r.org_id and h.hour >= r.from_h and h.hour < r.first_day
          union all
          select d.org_id, d.meter, d.project_id, d.sum, d.count, d.max from ${ranges}
            join usage_rollups_daily d on d.org_id = r.org_id and d.day >= r.first_day and d.day < r.end_day
          union all
          select h.org_id, h.meter, h.project_id, h.sum, h.count, h.max from ${ranges}
            join usage_rollups h on h.org_id = r.org_id and h.hour >= r.end_day and h.hour < r.to_h
        ) u
        group by 1, 2, 3`),
      // Distinct values per project and for the organization as a whole (a value seen in two projects
      // counts once in the organization's total, as the quotas count it).
      rows<UniqueRow>(sql`
        select q.org_id, q.meter, case when grouping(q.project_id) = 1 then null else q.project_id end
            as project_id, count(distinct q.value)::float8 as n
        from ${ranges}
        join usage_uniques q on q.org_id = r.org_id and q.hour >= r.from_h and q.hour < r.to_h
        group by grouping sets ((q.org_id, q.meter, q.project_id), (q.org_id, q.meter))`),
      rows<GaugeRow>(sql`
        select org_id, meter, project_id, value::float8 as value from usage_gauges
        where org_id = any(${ids(found)})`),
      // Orgplane's own counts, as quotas.service counts them (subscriptions.store.pg.ts createQuotaUsageStore).
      rows<CountRow>(sql`
        select org_id, 'members' as quota, count(*)::float8 as n from memberships
          where org_id = any(${ids(found)}) group by org_id
        union all
        select org_id, 'projects', count(*)::float8 from projects
          where org_id = any(${ids(found)}) and deleted_at is null group by org_id
        union all
        select org_id, 'api_keys', count(*)::float8 from api_keys
          where org_id = any(${ids(found)}) and revoked_at is null
            and (expires_at is null or expires_at > ${nowText}::timestamptz) group by org_id
        union all
        select org_id, 'invitations', count(*)::float8 from invitations
          where org_id = any(${ids(found)}) and status = 'pending'
            and expires_at > ${nowText}::timestamptz group by org_id`),
      rows<WebhookRow>(sql`
        select org_id, count(*) filter (where state = 'delivered')::float8 as delivered,
          count(*) filter (where state = 'failed')::float8 as failed
        from webhook_deliveries
        where org_id = any(${ids(found)}) and state <> 'pending' and last_attempt_at >= ${since}::timestamptz
        group by org_id`),
    ]);

    const cells = new Map<string, Map<string, Map<string, Cell>>>();
    const orgTotals = new Map<string, Map<string, number>>();
    const cellOf = (orgId: string, meter: string, project: string): Cell => {
      let byMeter = cells.get(orgId);
      if (byMeter === undefined) {
        byMeter = new Map();
        cells.set(orgId, byMeter);
      }
      let byProject = byMeter.get(meter);
      if (byProject === undefined) {
        byProject = new Map();
        byMeter.set(meter, byProject);
      }
      let cell = byProject.get(project);
      if (cell === undefined) {
        cell = { sum: 0, count: 0, max: 0, last: 0, unique: 0 };
        byProject.set(project, cell);
      }
      return cell;
    };
    for (const r of rollups) {
      if (meterByKey.has(r.meter)) {
        const cell = cellOf(r.org_id, r.meter, r.project_id);
        cell.sum = r.sum;
        cell.count = r.count;
        cell.max = r.max;
      }
    }
    for (const g of gauges) {
      if (meterByKey.get(g.meter)?.aggregation === "last") {
        cellOf(g.org_id, g.meter, g.project_id).last = g.value;
      }
    }
    for (const u of uniques) {
      if (u.project_id === null) {
        let totals = orgTotals.get(u.org_id);
        if (totals === undefined) {
          totals = new Map();
          orgTotals.set(u.org_id, totals);
        }
        totals.set(u.meter, u.n);
      } else if (meterByKey.has(u.meter)) {
        cellOf(u.org_id, u.meter, u.project_id).unique = u.n;
      }
    }
    const countsByOrg = new Map<string, Map<string, number>>();
    for (const c of counts) {
      let m = countsByOrg.get(c.org_id);
      if (m === undefined) {
        m = new Map();
        countsByOrg.set(c.org_id, m);
      }
      m.set(c.quota, c.n);
    }
    const webhooksByOrg = new Map(webhooks.map((w) => [w.org_id, w]));

    return subscriptions.map((s): OrgFigures => {
      const byMeter = cells.get(s.org_id) ?? new Map<string, Map<string, Cell>>();
      const usage = usageSeries(byMeter, meterByKey);
      // A meter's organization-wide use: what a quota it counts against has used (quotas.service's figure).
      const meterTotal = (meter: MeterInfo): number => {
        if (meter.aggregation === "unique_count") {
          return orgTotals.get(s.org_id)?.get(meter.key) ?? 0;
        }
        let total = 0;
        for (const cell of byMeter.get(meter.key)?.values() ?? []) {
          const v = aggregateOf(cell, meter.aggregation);
          total = meter.aggregation === "max" ? Math.max(total, v) : total + v;
        }
        return total;
      };
      const owned = countsByOrg.get(s.org_id);
      const quotas: OrgFigures["quotas"] = [];
      for (const [quota, limit] of Object.entries(planQuotas.get(s.plan_version_id) ?? {})) {
        if (typeof limit !== "number" || limit <= 0) {
          continue;
        }
        const meter = meters.find((m) => m.quota === quota);
        const used =
          meter !== undefined
            ? meterTotal(meter)
            : OWNED_QUOTAS.has(quota)
              ? (owned?.get(quota) ?? 0)
              : undefined;
        if (used !== undefined) {
          quotas.push({ quota, used, limit });
        }
      }
      const w = webhooksByOrg.get(s.org_id);
      // A credit account whose period has ended but not yet rolled (the sweep or the next debit rolls it)
      // has used nothing of the period that is current now.
      const periodOver = s.credit_period_end !== null && s.credit_period_end <= now.getTime();
      return {
        orgId: s.org_id,
        credits:
          s.balance === null
            ? null
            : { balance: s.balance, periodUsed: periodOver ? 0 : (s.period_used ?? 0) },
        usage,
        quotas,
        webhooks: { delivered: w?.delivered ?? 0, failed: w?.failed ?? 0 },
      };
    });
  }

  return {
    async readFigures(orgIds, now) {
      const unique = [...new Set(orgIds)];
      const out: OrgFigures[] = [];
      for (let i = 0; i < unique.length; i += ORGS_PER_STATEMENT) {
        out.push(...(await readBatch(unique.slice(i, i + ORGS_PER_STATEMENT), now)));
      }
      return out;
    },
  };
}

const OWNED_QUOTAS = new Set(["members", "projects", "api_keys", "invitations"]);

/**
 * One organization's usage series: per meter and project, the meter's aggregate; the organization's own
 * row (`""`) always, the MAX_PROJECTS_PER_ORG projects with the most events by name, and the rest combined
 * into `_other` (summed; the largest for `max` meters; for `unique_count` meters the sum of the projects'
 * distinct counts, an upper bound, since a value may occur in several of them).
 */
function usageSeries(
  byMeter: Map<string, Map<string, Cell>>,
  meterByKey: Map<string, MeterInfo>,
): OrgFigures["usage"] {
  const activity = new Map<string, number>();
  for (const byProject of byMeter.values()) {
    for (const [project, cell] of byProject) {
      if (project !== "") {
        activity.set(project, (activity.get(project) ?? 0) + cell.count + (cell.last > 0 ? 1 : 0));
      }
    }
  }
  const kept = new Set(
    [...activity.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, MAX_PROJECTS_PER_ORG)
      .map(([project]) => project),
  );
  const out: OrgFigures["usage"] = [];
  for (const [meter, byProject] of byMeter) {
    const info = meterByKey.get(meter);
    if (info === undefined) {
      continue;
    }
    let other: number | undefined;
    for (const [project, cell] of byProject) {
      const value = aggregateOf(cell, info.aggregation);
      if (project === "" || kept.has(project)) {
        out.push({ meter, project, value });
      } else {
        other =
          other === undefined ? value : info.aggregation === "max" ? Math.max(other, value) : other + value;
      }
    }
    if (other !== undefined) {
      out.push({ meter, project: OTHER_PROJECTS, value: other });
    }
  }
  return out;
}

/**
 * Arbitrary but fixed (like the migration lock's): the process holding this advisory lock is the one that
 * exports the figures read from the database, so two processes never push them twice.
 */
const EXPORT_LOCK_KEY = 7_212_019_977;

/** Who exports the database figures: one process at a time, across every process sharing the database. */
export type ExportLease = {
  /**
   * True while this process holds the lease: the first call that finds it free takes it, on a pool
   * connection kept for as long as it is held. A lost connection loses the lease (PostgreSQL releases a
   * session's advisory locks with it), and the next call tries again.
   */
  acquire(): Promise<boolean>;
  /** Give the lease up and return its connection (at shutdown, before the pool closes). */
  release(): Promise<void>;
};

export function createExportLease(pool: pg.Pool, onError: (err: Error) => void): ExportLease {
  let holder: pg.PoolClient | undefined;

  return {
    async acquire() {
      if (holder !== undefined) {
        return true;
      }
      const client = await pool.connect();
      let taken = false;
      try {
        const result = await client.query<{ taken: boolean }>("select pg_try_advisory_lock($1) as taken", [
          EXPORT_LOCK_KEY,
        ]);
        taken = result.rows[0]?.taken === true;
      } catch (err) {
        client.release(err instanceof Error ? err : true);
        throw err;
      }
      if (!taken) {
        client.release();
        return false;
      }
      holder = client;
      client.on("error", (err) => {
        onError(err);
        if (holder === client) {
          holder = undefined;
          client.release(err);
        }
      });
      return true;
    },
    async release() {
      const client = holder;
      holder = undefined;
      if (client === undefined) {
        return;
      }
      try {
        await client.query("select pg_advisory_unlock($1)", [EXPORT_LOCK_KEY]);
        client.release();
      } catch (err) {
        // The connection is discarded, which releases the lock just the same.
        client.release(err instanceof Error ? err : true);
      }
    },
  };
}
