import type { Clock } from "../../lib/clock.ts";
import {
  DECIMAL_PATTERN,
  decimalOfNumber,
  fromUnits,
  multiplyDecimals,
  subDecimal,
  toUnits,
} from "../../lib/decimal.ts";
import { AppError } from "../../lib/errors.ts";
import { isId } from "../../lib/ids.ts";
import type { JsonObject, JsonValue } from "../../lib/json.ts";
import { creditPeriodOf } from "../alerts/alert-period.ts";
import type { Catalog, CatalogMeter } from "../catalog/catalog.types.ts";
import { type CreditsService, type DebitResult, isSettleFirst } from "../credits/credits.service.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { QuotasService } from "../quotas/quotas.service.ts";
import type { SpendingLimitsService } from "../spending-limits/spending-limits.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import type { OwnedQuota } from "../subscriptions/subscriptions.store.ts";
import {
  type GaugeValue,
  MissingUsagePartition,
  type RollupBucket,
  type RollupGranularity,
  type StoredUsageEvent,
  type UniqueCount,
} from "./usage.store.ts";
import type { MeterTotal, UsageProject, UsageViewData } from "./usage.types.ts";
import { renderUsageView, viewNeeds } from "./usage-view.ts";

/** One event of a batch as the HTTP layer validated its shape. */
export type UsageEventInput = {
  id: string;
  type: string;
  subject?: string | undefined;
  time: Date;
  data?: { [key: string]: JsonValue } | undefined;
};

/** Who sends a batch: an org or project API key reports its own use by default. */
export type UsageSender = { keyId: string | null; projectId: string | null };

export type UsageRejection =
  | "duplicate"
  | "unknown_meter"
  | "unknown_subject"
  | "unknown_key"
  | "time_in_future"
  | "too_late"
  | "invalid_value"
  | "insufficient_credits"
  | "spending_limit_reached";

export type UsageEventOutcome = {
  index: number;
  id: string;
  status: "duplicate" | "rejected";
  reason: UsageRejection;
  detail: string;
};

export type IngestResult = {
  accepted: number;
  duplicates: number;
  rejected: number;
  /** Only the events not accepted, in batch order. */
  events: UsageEventOutcome[];
  credits: { debited: string; balance: string } | null;
};

export type UsageGranularity = "hour" | "day" | "month";
export type UsageDimension = "project" | "key";

export type UsageQuery = {
  from?: Date | undefined;
  to?: Date | undefined;
  granularity: UsageGranularity;
  groupBy: readonly UsageDimension[];
  meters?: readonly string[] | undefined;
};

export type MeterTotalView = {
  meter: string;
  unit: string;
  aggregation: CatalogMeter["aggregation"];
  value: number;
  credits: string;
  cost: string | null;
  benchmarkCost: string | null;
  savings: string | null;
};

export type SeriesPoint = {
  start: Date;
  meter: string;
  /** Present only when grouped by project / key. */
  projectId?: string | null;
  keyId?: string | null;
  value: number;
  credits: string;
};

export type ProjectUsage = {
  projectId: string | null;
  name: string | null;
  state: UsageProject["state"] | null;
  meters: Record<string, number>;
};

export type UsageReport = {
  orgId: string;
  from: Date;
  to: Date;
  granularity: UsageGranularity;
  groupBy: UsageDimension[];
  period: { start: Date; end: Date } | null;
  currency: string;
  totals: MeterTotalView[];
  series: SeriesPoint[];
  projects: ProjectUsage[];
  summary: JsonObject;
};

/** Events may run ahead of the server's clock by this much. */
export const FUTURE_TOLERANCE_MS = 5 * 60_000;
/** Dedup records are kept at least this long (and never shorter than the late window). */
export const DEDUP_RETENTION_MS = 35 * 86_400_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** A usage query spans at most this much. */
export const MAX_RANGE_MS = 400 * DAY_MS;
const MAX_ATTEMPTS = 4;
/** Projects a usage view lists at most. */
const MAX_VIEW_PROJECTS = 1000;

/** What a batch's write committed: the ids that were new, and the debit of their credits (if any). */
type Written = { fresh: Set<string>; debit: Extract<DebitResult, { ok: true }> | null; debited: string };

/** The debit of a batch was refused: its costed events are rejected and the batch is written without them. */
class DebitRefused extends Error {
  readonly reason: "insufficient_credits" | "spending_limit_reached";
  readonly balance: string;
  /** The ids that were new when the debit was refused (the others were duplicates already). */
  readonly fresh: ReadonlySet<string>;
  constructor(result: Extract<DebitResult, { ok: false }>, fresh: ReadonlySet<string>) {
    super(result.reason);
    this.reason = result.reason;
    this.balance = result.balance;
    this.fresh = fresh;
  }
}
class SettleCredits extends Error {}

function floorHour(d: Date): Date {
  return new Date(Math.floor(d.getTime() / HOUR_MS) * HOUR_MS);
}
function ceilHour(d: Date): Date {
  return new Date(Math.ceil(d.getTime() / HOUR_MS) * HOUR_MS);
}

/** The first instant of the UTC month `delta` months after the one holding `d`. */
function monthStart(d: Date, delta = 0): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + delta, 1));
}

/** The start of the UTC bucket holding `d`. */
function bucketOf(d: Date, granularity: UsageGranularity): Date {
  switch (granularity) {
    case "hour":
      return floorHour(d);
    case "day":
      return new Date(Math.floor(d.getTime() / DAY_MS) * DAY_MS);
    case "month":
      return monthStart(d);
  }
}

/** The start of the bucket after the one starting at `start`. */
function nextBucket(start: Date, granularity: UsageGranularity): Date {
  switch (granularity) {
    case "hour":
      return new Date(start.getTime() + HOUR_MS);
    case "day":
      return new Date(start.getTime() + DAY_MS);
    case "month":
      return monthStart(start, 1);
  }
}

function validationFailed(path: string, message: string): AppError {
  return new AppError("validation_failed", `${path}: ${message}`, { errors: [{ path, message }] });
}

/** A meter's aggregation applied to the combined rows of one (project, key): sum, count, max or last. */
type Accumulator = {
  sum: bigint;
  count: number;
  max: bigint | null;
  last: bigint;
  lastAt: number;
  credits: bigint;
};

function emptyAccumulator(): Accumulator {
  return { sum: 0n, count: 0, max: null, last: 0n, lastAt: Number.NEGATIVE_INFINITY, credits: 0n };
}

function addBucket(acc: Accumulator, b: RollupBucket): void {
  acc.sum += toUnits(b.sum);
  acc.count += b.count;
  const max = toUnits(b.max);
  acc.max = acc.max === null || max > acc.max ? max : acc.max;
  if (b.lastAt.getTime() >= acc.lastAt) {
    acc.last = toUnits(b.last);
    acc.lastAt = b.lastAt.getTime();
  }
  acc.credits += toUnits(b.credits);
}

/** The value of a meter from the accumulators of each (project, key) it combines. */
function meterValue(meter: CatalogMeter, parts: readonly Accumulator[]): bigint {
  switch (meter.aggregation) {
    case "sum":
      return parts.reduce((t, a) => t + a.sum, 0n);
    case "count":
      return toUnits(String(parts.reduce((t, a) => t + a.count, 0)));
    case "max":
      return parts.reduce<bigint>((m, a) => (a.max !== null && a.max > m ? a.max : m), 0n);
    case "last":
      // A gauge per project and key: the org's value is the sum of each one's latest.
      return parts.reduce((t, a) => t + a.last, 0n);
    case "unique_count":
      return 0n;
  }
}

function unitsToNumber(units: bigint): number {
  return Number(fromUnits(units));
}

export function createUsageService(deps: {
  db: Transactor;
  stores: Pick<Stores, "usage" | "projects" | "apiKeys" | "orgs" | "quotaUsage">;
  catalogFile: Catalog;
  subscriptions: Pick<SubscriptionsService, "current">;
  credits: Pick<CreditsService, "debitIn" | "settle">;
  spending: Pick<SpendingLimitsService, "assertNotBlocked" | "checkSpending">;
  quotas: Pick<QuotasService, "recordUsageAlerts">;
  clock: Clock;
  /** How old an event may be when it arrives. */
  lateWindowMs: number;
  /** Raw events are kept this many months (whole partitions dropped); rollups are kept. */
  retentionMonths: number;
  /** Told of failures of work that follows an answered request (alert checks after a batch). */
  onBackgroundError?: (err: unknown) => void;
  /** The organization's webhook deliveries finished in the last 7 days that succeeded (null: none finished). */
  webhookDeliveryRate7d?: (orgId: string) => Promise<number | null>;
}) {
  const { clock } = deps;
  const meters = new Map(deps.catalogFile.meters.map((m) => [m.key, m]));
  const gaugeMeters = new Set(
    deps.catalogFile.meters.filter((m) => m.aggregation === "last").map((m) => m.key),
  );
  const uniqueMeters = new Set(
    deps.catalogFile.meters.filter((m) => m.aggregation === "unique_count").map((m) => m.key),
  );
  const meterOfQuota = new Map(
    deps.catalogFile.meters.flatMap((m) => (m.quota === null ? [] : [[m.quota, m] as const])),
  );
  const view = deps.catalogFile.usageView;
  /** Credits per unit of the meters that cost any (a unique_count meter has no value to price). */
  const creditCosts = new Map(
    Object.entries(deps.catalogFile.creditCosts).filter(
      ([key, cost]) => toUnits(cost) !== 0n && meters.get(key)?.aggregation !== "unique_count",
    ),
  );

  /** Check every event against the catalog, the clock, the org's projects and keys. */
  async function classify(
    orgId: string,
    events: readonly UsageEventInput[],
    sender: UsageSender,
  ): Promise<{ candidates: Map<number, StoredUsageEvent>; outcomes: UsageEventOutcome[] }> {
    const now = clock.now().getTime();
    const outcomes: UsageEventOutcome[] = [];
    const reject = (index: number, id: string, reason: UsageRejection, detail: string) => {
      outcomes.push({ index, id, status: reason === "duplicate" ? "duplicate" : "rejected", reason, detail });
    };
    // Distinct subjects and keys first (a batch names a handful many times); each id is decoded once.
    const subjects = new Set<string>();
    const keyNames = new Set<string>();
    for (const e of events) {
      if (e.subject !== undefined) {
        subjects.add(e.subject);
      }
      const keyId = e.data?.key_id;
      if (typeof keyId === "string") {
        keyNames.add(keyId);
      }
    }
    const projectIds = [...subjects].filter((id) => isId("prj", id));
    const keyIds = [...keyNames].filter((id) => isId("key", id));
    const [liveProjects, knownKeys] = await Promise.all([
      projectIds.length === 0
        ? Promise.resolve([])
        : deps.stores.projects.list({
            orgId,
            onlyIds: projectIds,
            state: undefined,
            after: undefined,
            limit: projectIds.length,
          }),
      deps.stores.apiKeys.existingIds(orgId, keyIds),
    ]);
    const projects = new Set(liveProjects.map((p) => p.id));
    const keys = new Set(knownKeys);

    const seen = new Map<string, number>();
    const candidates = new Map<number, StoredUsageEvent>();
    events.forEach((e, index) => {
      const first = seen.get(e.id);
      if (first !== undefined) {
        reject(index, e.id, "duplicate", `repeats event ${first} of this batch`);
        return;
      }
      seen.set(e.id, index);
      const meter = meters.get(e.type);
      if (meter === undefined) {
        reject(index, e.id, "unknown_meter", `'${e.type}' is not a meter of this catalog`);
        return;
      }
      const time = e.time.getTime();
      if (time > now + FUTURE_TOLERANCE_MS) {
        reject(index, e.id, "time_in_future", "time is more than 5 minutes ahead of the server's clock");
        return;
      }
      if (time < now - deps.lateWindowMs) {
        reject(
          index,
          e.id,
          "too_late",
          `time is older than the late window of ${Math.round(deps.lateWindowMs / HOUR_MS)} hours`,
        );
        return;
      }
      let projectId: string | null;
      if (e.subject === undefined) {
        projectId = sender.projectId;
      } else if (e.subject === orgId && sender.projectId === null) {
        projectId = null;
      } else if (projects.has(e.subject) && (sender.projectId === null || sender.projectId === e.subject)) {
        projectId = e.subject;
      } else {
        reject(
          index,
          e.id,
          "unknown_subject",
          `'${e.subject}' is not this organization nor one of its projects`,
        );
        return;
      }
      const { value: rawValue, key_id: rawKey, ...properties } = e.data ?? {};
      let keyId = sender.keyId;
      if (rawKey !== undefined && rawKey !== null) {
        if (typeof rawKey !== "string" || !keys.has(rawKey)) {
          reject(index, e.id, "unknown_key", "data.key_id is not an API key of this organization");
          return;
        }
        keyId = rawKey;
      }
      let value = "1";
      let uniqueValue: string | null = null;
      if (meter.aggregation === "unique_count") {
        if (typeof rawValue !== "string" && typeof rawValue !== "number") {
          reject(
            index,
            e.id,
            "invalid_value",
            "a unique_count meter needs data.value: the distinct thing counted",
          );
          return;
        }
        uniqueValue = String(rawValue);
      } else if (rawValue !== undefined && rawValue !== null) {
        const parsed =
          typeof rawValue === "number"
            ? decimalOfNumber(rawValue)
            : typeof rawValue === "string" && DECIMAL_PATTERN.test(rawValue)
              ? rawValue
              : undefined;
        if (parsed === undefined) {
          reject(index, e.id, "invalid_value", "data.value must be a non-negative number or decimal string");
          return;
        }
        value = parsed;
      }
      const creditCost = creditCosts.get(meter.key);
      const credits =
        creditCost === undefined
          ? "0"
          : meter.aggregation === "count"
            ? creditCost
            : multiplyDecimals(value, creditCost, "up");
      candidates.set(index, {
        id: e.id,
        projectId,
        keyId,
        meter: meter.key,
        time: e.time,
        value,
        uniqueValue,
        credits,
        properties,
      });
    });
    return { candidates, outcomes };
  }

  /** One transaction: the new events, their rollups and the debit of their credits commit together. */
  async function write(orgId: string, rows: StoredUsageEvent[]): Promise<Written> {
    if (rows.every((r) => r.credits === "0")) {
      // Nothing to debit: the batch is one statement, atomic and durable on its own (no BEGIN/COMMIT
      // round trips on the busiest write path).
      return {
        fresh: new Set(await deps.stores.usage.insertBatch(orgId, rows, clock.now(), gaugeMeters)),
        debit: null,
        debited: "0",
      };
    }
    return deps.db.transaction(async (stores) => {
      const fresh = new Set(await stores.usage.insertBatch(orgId, rows, clock.now(), gaugeMeters));
      let units = 0n;
      for (const r of rows) {
        if (r.credits !== "0" && fresh.has(r.id)) {
          units += toUnits(r.credits);
        }
      }
      if (units === 0n) {
        return { fresh, debit: null, debited: "0" };
      }
      const debited = fromUnits(units);
      const debit = await deps.credits.debitIn(stores, orgId, debited, {
        source: "usage",
        reference: `usage:${rows[0]?.id ?? ""}:${rows.length}`,
      });
      if (debit === "settle") {
        throw new SettleCredits();
      }
      if (!debit.ok) {
        throw new DebitRefused(debit, fresh);
      }
      return { fresh, debit, debited };
    });
  }

  /** Month partitions for every event month, now and next month (created on demand, idempotent). */
  async function ensurePartitionsFor(times: readonly Date[]): Promise<void> {
    const starts = times.map((t) => t.getTime());
    const from = new Date(Math.min(...starts, clock.now().getTime()));
    const to = new Date(Math.max(...starts, clock.now().getTime()));
    await deps.stores.usage.ensurePartitions(monthStart(from), monthStart(to, 1));
  }

  /** After the batch committed: spending alerts for the debit, quota alerts for the quotas it counted in. */
  async function afterIngest(
    orgId: string,
    debit: Extract<DebitResult, { ok: true }> | null,
    quotas: ReadonlySet<string>,
  ): Promise<void> {
    if (debit !== null) {
      await deps.spending.checkSpending(orgId, {
        periodStart: debit.periodStart,
        periodUsage: debit.periodUsed,
        allocation: debit.periodAllocation,
        balance: debit.balance,
      });
    }
    for (const quota of quotas) {
      await deps.quotas.recordUsageAlerts(orgId, quota);
    }
  }

  async function rollupsOf(
    orgId: string,
    from: Date,
    to: Date,
    granularity: RollupGranularity,
    meterKeys: readonly string[],
  ): Promise<RollupBucket[]> {
    return deps.stores.usage.rollups({ orgId, from, to, granularity, meters: meterKeys });
  }

  /**
   * Totals per meter (and per project) over a range. `buckets`: rollups of the range already read at
   * some granularity (the report's), else read now as one bucket. Rows are first combined per meter,
   * project and key (a gauge's latest across buckets), then across projects and keys.
   */
  async function totalsOver(
    orgId: string,
    from: Date,
    to: Date,
    meterKeys: readonly string[],
    byProject: boolean,
    buckets?: readonly RollupBucket[],
  ): Promise<{ totals: Map<string, MeterTotal>; perProject: Map<string | null, Map<string, MeterTotal>> }> {
    const uniques = meterKeys.filter((m) => uniqueMeters.has(m));
    const distinctOf = (perProjectRows: boolean) =>
      uniques.length === 0
        ? Promise.resolve<UniqueCount[]>([])
        : deps.stores.usage.uniqueCounts({
            orgId,
            from,
            to,
            granularity: "total",
            meters: uniques,
            byProject: perProjectRows,
            byKey: false,
          });
    const [rows, distinct, orgDistinct] = await Promise.all([
      buckets ?? rollupsOf(orgId, from, to, "total", meterKeys),
      distinctOf(byProject),
      // The org's distinct count is not the sum of its projects': asked for separately.
      byProject ? distinctOf(false) : Promise.resolve(undefined),
    ]);
    // One accumulator per meter, project and key over the whole range.
    const combos = new Map<string, { meter: string; projectId: string | null; acc: Accumulator }>();
    for (const b of rows) {
      const id = `${b.meter}|${b.projectId ?? ""}|${b.keyId ?? ""}`;
      let combo = combos.get(id);
      if (combo === undefined) {
        combo = { meter: b.meter, projectId: b.projectId, acc: emptyAccumulator() };
        combos.set(id, combo);
      }
      addBucket(combo.acc, b);
    }
    const combine = (
      parts: readonly { meter: string; acc: Accumulator }[],
      uniqueRows: readonly UniqueCount[],
    ): Map<string, MeterTotal> => {
      const out = new Map<string, MeterTotal>();
      for (const key of meterKeys) {
        const meter = meters.get(key);
        if (meter === undefined) {
          continue;
        }
        const accs = parts.filter((p) => p.meter === key).map((p) => p.acc);
        const credits = accs.reduce((t, a) => t + a.credits, 0n);
        const value =
          meter.aggregation === "unique_count"
            ? uniqueRows.filter((u) => u.meter === key).reduce((t, u) => t + u.count, 0)
            : unitsToNumber(meterValue(meter, accs));
        out.set(key, { value, credits: fromUnits(credits) });
      }
      return out;
    };
    const all = [...combos.values()];
    const totals = combine(all, orgDistinct ?? distinct);
    const perProject = new Map<string | null, Map<string, MeterTotal>>();
    if (byProject) {
      const projectIds = new Set([...all.map((c) => c.projectId), ...distinct.map((d) => d.projectId)]);
      for (const p of projectIds) {
        perProject.set(
          p,
          combine(
            all.filter((c) => c.projectId === p),
            distinct.filter((d) => d.projectId === p),
          ),
        );
      }
    }
    return { totals, perProject };
  }

  /** Current use of a product-owned quota a meter counts against; undefined when none does. */
  async function quotaUsed(orgId: string, quota: string): Promise<number | undefined> {
    const meter = meterOfQuota.get(quota);
    if (meter === undefined) {
      return undefined;
    }
    if (meter.aggregation === "last") {
      const gauges = await deps.stores.usage.gauges(orgId, [meter.key]);
      return gauges.reduce((t, g) => t + Number(g.value), 0);
    }
    const { subscription } = await deps.subscriptions.current(orgId);
    const period = creditPeriodOf(subscription, clock.now());
    const { totals } = await totalsOver(
      orgId,
      floorHour(period.start),
      ceilHour(period.end),
      [meter.key],
      false,
    );
    return totals.get(meter.key)?.value ?? 0;
  }

  function costOf(perUnit: string | null, meter: CatalogMeter, value: number): string | null {
    if (perUnit === null || (meter.aggregation !== "sum" && meter.aggregation !== "count")) {
      return null;
    }
    const exact = decimalOfNumber(value);
    return exact === undefined ? null : multiplyDecimals(exact, perUnit);
  }

  function totalView(meter: CatalogMeter, total: MeterTotal): MeterTotalView {
    const cost = costOf(meter.costPerUnit, meter, total.value);
    const benchmarkCost = costOf(meter.benchmarkCostPerUnit, meter, total.value);
    return {
      meter: meter.key,
      unit: meter.unit,
      aggregation: meter.aggregation,
      value: total.value,
      credits: total.credits,
      cost,
      benchmarkCost,
      savings: benchmarkCost === null ? null : subDecimal(benchmarkCost, cost ?? "0"),
    };
  }

  /** Series: the rollups per bucket combined over the dimensions not grouped by. */
  async function seriesOf(
    orgId: string,
    from: Date,
    to: Date,
    granularity: UsageGranularity,
    meterKeys: readonly string[],
    groupBy: readonly UsageDimension[],
    rows: readonly RollupBucket[],
  ): Promise<SeriesPoint[]> {
    const byProject = groupBy.includes("project");
    const byKey = groupBy.includes("key");
    const uniques = meterKeys.filter((m) => uniqueMeters.has(m));
    const wanted = new Set(meterKeys);
    const [buckets, distinct] = await Promise.all([
      rows.filter((b) => wanted.has(b.meter)),
      uniques.length === 0
        ? Promise.resolve<UniqueCount[]>([])
        : deps.stores.usage.uniqueCounts({ orgId, from, to, granularity, meters: uniques, byProject, byKey }),
    ]);
    const groups = new Map<string, { point: SeriesPoint; parts: Accumulator[]; credits: bigint }>();
    const groupKey = (start: Date, meter: string, projectId: string | null, keyId: string | null) =>
      `${start.getTime()}|${meter}|${byProject ? (projectId ?? "") : "*"}|${byKey ? (keyId ?? "") : "*"}`;
    const pointOf = (
      start: Date,
      meter: string,
      projectId: string | null,
      keyId: string | null,
    ): SeriesPoint => ({
      start,
      meter,
      ...(byProject ? { projectId } : {}),
      ...(byKey ? { keyId } : {}),
      value: 0,
      credits: "0",
    });
    for (const b of buckets) {
      const k = groupKey(b.bucket, b.meter, b.projectId, b.keyId);
      let g = groups.get(k);
      if (g === undefined) {
        g = { point: pointOf(b.bucket, b.meter, b.projectId, b.keyId), parts: [], credits: 0n };
        groups.set(k, g);
      }
      const acc = emptyAccumulator();
      addBucket(acc, b);
      g.parts.push(acc);
      g.credits += acc.credits;
    }
    for (const u of distinct) {
      const start = u.bucket ?? from;
      const k = groupKey(start, u.meter, u.projectId, u.keyId);
      let g = groups.get(k);
      if (g === undefined) {
        g = { point: pointOf(start, u.meter, u.projectId, u.keyId), parts: [], credits: 0n };
        groups.set(k, g);
      }
      g.point.value += u.count;
    }
    const out: SeriesPoint[] = [];
    for (const g of groups.values()) {
      const meter = meters.get(g.point.meter);
      if (meter === undefined) {
        continue;
      }
      if (meter.aggregation !== "unique_count") {
        g.point.value = unitsToNumber(meterValue(meter, g.parts));
      }
      g.point.credits = fromUnits(g.credits);
      out.push(g.point);
    }
    return out.sort(
      (a, b) =>
        a.start.getTime() - b.start.getTime() ||
        a.meter.localeCompare(b.meter) ||
        (a.projectId ?? "").localeCompare(b.projectId ?? "") ||
        (a.keyId ?? "").localeCompare(b.keyId ?? ""),
    );
  }

  /** The org total of a gauge at the end of each bucket of the range, carried forward from before it. */
  async function historyOf(
    orgId: string,
    meter: string,
    from: Date,
    to: Date,
    granularity: UsageGranularity,
  ): Promise<{ at: Date; value: number }[]> {
    const [before, buckets] = await Promise.all([
      deps.stores.usage.gaugesBefore(orgId, [meter], from),
      rollupsOf(orgId, from, to, granularity, [meter]),
    ]);
    const latest = new Map<string, bigint>();
    for (const g of before) {
      latest.set(g.projectId ?? "", toUnits(g.value));
    }
    const byBucket = new Map<number, RollupBucket[]>();
    for (const b of buckets) {
      const list = byBucket.get(b.bucket.getTime()) ?? [];
      list.push(b);
      byBucket.set(b.bucket.getTime(), list);
    }
    const points: { at: Date; value: number }[] = [];
    const now = clock.now().getTime();
    // One point per bucket up to now, from the first one with a known value; a bucket without a
    // sample carries the values before it forward and is sampled at its end.
    for (
      let start = bucketOf(from, granularity);
      start.getTime() < to.getTime() && start.getTime() <= now;
    ) {
      const next = nextBucket(start, granularity);
      let at = Math.min(next.getTime(), now);
      const latestAt = new Map<string, number>();
      const samples = byBucket.get(start.getTime()) ?? [];
      for (const b of samples) {
        // Per project, the latest sample of the bucket (keys of one project combine by their latest).
        const p = b.projectId ?? "";
        if (b.lastAt.getTime() >= (latestAt.get(p) ?? Number.NEGATIVE_INFINITY)) {
          latestAt.set(p, b.lastAt.getTime());
          latest.set(p, toUnits(b.last));
        }
      }
      if (latestAt.size > 0) {
        at = Math.max(...latestAt.values());
      }
      if (latest.size > 0) {
        points.push({
          at: new Date(at),
          value: unitsToNumber([...latest.values()].reduce((t, v) => t + v, 0n)),
        });
      }
      start = next;
    }
    return points;
  }

  async function viewData(
    orgId: string,
    from: Date,
    to: Date,
    granularity: UsageGranularity,
    quotas: Record<string, number | null>,
    totals: Map<string, MeterTotal>,
    perProject: Map<string | null, Map<string, MeterTotal>>,
    projects: UsageProject[],
    /** True when the range is the current billing period: a quota's period use is then in `totals`. */
    isPeriod: boolean,
  ): Promise<UsageViewData> {
    const needs = viewNeeds(view, deps.catalogFile);
    const now = clock.now();
    const usedOf = async (quota: string): Promise<number> => {
      const meter = meterOfQuota.get(quota);
      if (isPeriod && meter !== undefined && meter.aggregation !== "last") {
        return totals.get(meter.key)?.value ?? 0;
      }
      return (await quotaUsed(orgId, quota)) ?? 0;
    };
    const countOf = async (quota: OwnedQuota): Promise<number> =>
      // Live projects are already listed (unless there are more than a view lists).
      quota === "projects" && projects.length < MAX_VIEW_PROJECTS
        ? projects.length
        : deps.stores.quotaUsage.count(orgId, quota, now);
    const [gauges, last7, counts, quotaUse, history, webhookRate] = await Promise.all([
      needs.gauges ? deps.stores.usage.gauges(orgId, null) : Promise.resolve<GaugeValue[]>([]),
      needs.last7Days.length === 0
        ? Promise.resolve(new Map<string, MeterTotal>())
        : totalsOver(
            orgId,
            floorHour(new Date(now.getTime() - 7 * DAY_MS)),
            ceilHour(now),
            needs.last7Days,
            false,
          ).then((t) => t.totals),
      Promise.all(needs.counts.map(async (q) => [q, await countOf(q)] as const)),
      Promise.all(needs.quotaUsed.map(async (q) => [q, await usedOf(q)] as const)),
      Promise.all(
        needs.history.map(async (m) => [m, await historyOf(orgId, m, from, to, granularity)] as const),
      ),
      needs.webhookDeliveryRate7d && deps.webhookDeliveryRate7d !== undefined
        ? deps.webhookDeliveryRate7d(orgId)
        : Promise.resolve(null),
    ]);
    const gaugeTotals = new Map<string, number>();
    const gaugesByProject = new Map<string | null, Map<string, number>>();
    for (const g of gauges) {
      gaugeTotals.set(g.meter, (gaugeTotals.get(g.meter) ?? 0) + Number(g.value));
      const row = gaugesByProject.get(g.projectId) ?? new Map<string, number>();
      row.set(g.meter, (row.get(g.meter) ?? 0) + Number(g.value));
      gaugesByProject.set(g.projectId, row);
    }
    const countMap = Object.fromEntries(counts);
    return {
      range: { from, to },
      quotas,
      totals,
      byProject: perProject,
      gauges: gaugeTotals,
      gaugesByProject,
      last7Days: new Map([...last7].map(([k, v]) => [k, v.value])),
      counts: {
        members: countMap.members ?? 0,
        projects: countMap.projects ?? 0,
        api_keys: countMap.api_keys ?? 0,
        invitations: countMap.invitations ?? 0,
      },
      quotaUsed: new Map(quotaUse),
      projects,
      history: new Map(history),
      webhookDeliveryRate7d: webhookRate,
    };
  }

  return {
    /**
     * Ingest one batch: exactly-once per (org, event id), durable when this resolves. Costed events
     * debit the credit ledger in the same transaction; when the balance or the hard limit cannot cover
     * them, they are rejected and the rest of the batch is written.
     */
    async ingest(
      orgId: string,
      events: readonly UsageEventInput[],
      sender: UsageSender,
    ): Promise<IngestResult> {
      await loadOrg(deps.stores, orgId);
      await deps.spending.assertNotBlocked(orgId);
      const { candidates, outcomes } = await classify(orgId, events, sender);
      let refused: DebitRefused | undefined;
      let result: Written | undefined;
      for (let attempt = 0; attempt < MAX_ATTEMPTS && result === undefined; attempt++) {
        const rows = [...candidates.values()]
          .filter((r) => refused === undefined || r.credits === "0")
          .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
        try {
          result =
            rows.length === 0 ? { fresh: new Set(), debit: null, debited: "0" } : await write(orgId, rows);
        } catch (err) {
          if (err instanceof DebitRefused) {
            refused = err;
          } else if (err instanceof MissingUsagePartition) {
            await ensurePartitionsFor(err.times);
          } else if (err instanceof SettleCredits || isSettleFirst(err)) {
            await deps.credits.settle(orgId);
          } else {
            throw err;
          }
        }
      }
      if (result === undefined) {
        throw new Error(`usage batch of ${orgId} could not be written after ${MAX_ATTEMPTS} attempts`);
      }
      const { fresh, debit, debited } = result;
      const touchedQuotas = new Set<string>();
      for (const [index, row] of candidates) {
        if (refused !== undefined && row.credits !== "0" && refused.fresh.has(row.id)) {
          outcomes.push({
            index,
            id: row.id,
            status: "rejected",
            reason: refused.reason,
            detail:
              refused.reason === "insufficient_credits"
                ? `the balance of ${refused.balance} credits cannot cover this batch's credit cost`
                : "the hard spending limit would be passed by this batch's credit cost",
          });
        } else if (!fresh.has(row.id)) {
          outcomes.push({
            index,
            id: row.id,
            status: "duplicate",
            reason: "duplicate",
            detail: "already received",
          });
        } else {
          const quota = meters.get(row.meter)?.quota;
          if (quota !== null && quota !== undefined) {
            touchedQuotas.add(quota);
          }
        }
      }
      outcomes.sort((a, b) => a.index - b.index);
      if (debit !== null || touchedQuotas.size > 0) {
        afterIngest(orgId, debit, touchedQuotas).catch((err: unknown) => deps.onBackgroundError?.(err));
      }
      const duplicates = outcomes.filter((o) => o.status === "duplicate").length;
      return {
        accepted: fresh.size,
        duplicates,
        rejected: outcomes.length - duplicates,
        events: outcomes,
        credits: debit === null ? null : { debited, balance: debit.balance },
      };
    },

    /** Totals, series, per-project rows and the catalog's usage view for a range (default: the billing period). */
    async report(orgId: string, query: UsageQuery): Promise<UsageReport> {
      const meterKeys = query.meters === undefined ? [...meters.keys()] : [...query.meters];
      for (const m of meterKeys) {
        if (!meters.has(m)) {
          throw validationFailed("meters", `'${m}' is not a meter of this catalog`);
        }
      }
      const given =
        query.from === undefined || query.to === undefined
          ? undefined
          : { from: floorHour(query.from), to: ceilHour(query.to) };
      // One read of the range's rollups at the asked granularity: the series, the totals and the
      // per-project rows all come from it. Read together with the subscription and the projects when the
      // range is given (else it is the subscription's period, known after).
      const readRollups = (from: Date, to: Date) =>
        rollupsOf(orgId, from, to, query.granularity, [...meters.keys()]);
      // The organization first: an unknown one is a 404 before anything reads (or settles) for it.
      await loadOrg(deps.stores, orgId);
      const [{ plan, subscription }, projectList, givenBuckets] = await Promise.all([
        deps.subscriptions.current(orgId),
        deps.stores.projects.list({
          orgId,
          onlyIds: null,
          state: undefined,
          after: undefined,
          limit: MAX_VIEW_PROJECTS,
        }),
        given === undefined ? Promise.resolve(undefined) : readRollups(given.from, given.to),
      ]);
      let from: Date;
      let to: Date;
      let period: { start: Date; end: Date } | null = null;
      if (given === undefined) {
        const p = creditPeriodOf(subscription, clock.now());
        period = { start: p.start, end: p.end };
        from = floorHour(p.start);
        to = ceilHour(p.end);
      } else {
        ({ from, to } = given);
      }
      const buckets = givenBuckets ?? (await readRollups(from, to));
      const groupBy = [...new Set(query.groupBy)];
      const [series, { totals, perProject }] = await Promise.all([
        seriesOf(orgId, from, to, query.granularity, meterKeys, groupBy, buckets),
        totalsOver(orgId, from, to, [...meters.keys()], true, buckets),
      ]);
      const projects: UsageProject[] = projectList
        .map((p) => ({ id: p.id, name: p.name, state: p.state }))
        .sort((a, b) => (a.id < b.id ? -1 : 1));
      const summary = renderUsageView(
        view,
        deps.catalogFile,
        await viewData(
          orgId,
          from,
          to,
          query.granularity,
          plan.definition.quotas,
          totals,
          perProject,
          projects,
          period !== null,
        ),
      );
      const named = new Map(projects.map((p) => [p.id, p]));
      const projectRows: ProjectUsage[] = [];
      const ids = new Set<string | null>([...projects.map((p) => p.id), ...perProject.keys()]);
      for (const id of ids) {
        const usage = perProject.get(id);
        const p = id === null ? undefined : named.get(id);
        projectRows.push({
          projectId: id,
          name: p?.name ?? null,
          state: p?.state ?? null,
          meters: Object.fromEntries(meterKeys.map((m) => [m, usage?.get(m)?.value ?? 0])),
        });
      }
      return {
        orgId,
        from,
        to,
        granularity: query.granularity,
        groupBy,
        period,
        currency: deps.catalogFile.usageCurrency,
        totals: meterKeys.flatMap((m) => {
          const meter = meters.get(m);
          const total = totals.get(m) ?? { value: 0, credits: "0" };
          return meter === undefined ? [] : [totalView(meter, total)];
        }),
        series,
        projects: projectRows,
        summary,
      };
    },

    quotaUsed,

    /** Partitions from the late window's first month through next month (at start and hourly). */
    async maintainPartitions(): Promise<void> {
      const now = clock.now();
      await deps.stores.usage.ensurePartitions(
        monthStart(new Date(now.getTime() - deps.lateWindowMs)),
        monthStart(now, 2),
      );
    },

    /** Drop raw-event months past retention and dedup records past their window; answers what went. */
    async prune(): Promise<{ partitions: string[]; dedup: number }> {
      const now = clock.now();
      const partitions = await deps.stores.usage.dropPartitionsBefore(monthStart(now, -deps.retentionMonths));
      const keep = Math.max(DEDUP_RETENTION_MS, deps.lateWindowMs + DAY_MS);
      let dedup = 0;
      for (;;) {
        const n = await deps.stores.usage.pruneDedup(new Date(now.getTime() - keep), 10_000);
        dedup += n;
        if (n < 10_000) {
          return { partitions, dedup };
        }
      }
    },
  };
}

export type UsageService = ReturnType<typeof createUsageService>;
