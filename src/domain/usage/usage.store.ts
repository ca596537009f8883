import type { JsonObject } from "../../lib/json.ts";

/** One event as stored: the org is the batch's; project and key may be absent (org-level usage). */
export type StoredUsageEvent = {
  /** The client's event id; (org, id) is unique for the dedup window. */
  id: string;
  projectId: string | null;
  keyId: string | null;
  meter: string;
  time: Date;
  /** Exact decimal string (non-negative); 1 for `count` meters when the event gives none. */
  value: string;
  /** For `unique_count` meters: the distinct thing counted; null otherwise. */
  uniqueValue: string | null;
  /** Credits this event costs (value × the meter's credit cost), exact decimal; "0" when not priced. */
  credits: string;
  /** Every member of the event's `data` except value and key_id. */
  properties: JsonObject;
};

/** A rollup bucket size the store aggregates to; `total` is one bucket for the whole range. */
export type RollupGranularity = "hour" | "day" | "month" | "total";

/**
 * The hourly rollups of one (meter, project, key) combined into one bucket. Buckets start at the
 * UTC hour/day/month (`total`: the range's `from`).
 */
export type RollupBucket = {
  bucket: Date;
  meter: string;
  projectId: string | null;
  keyId: string | null;
  /** Sum of values, exact decimal. */
  sum: string;
  /** Number of events. */
  count: number;
  /** Largest value, exact decimal. */
  max: string;
  /** The value of the latest event (by event time) in the bucket, and that time. */
  last: string;
  lastAt: Date;
  /** Credits of the bucket's events, exact decimal. */
  credits: string;
};

export type UniqueCount = {
  /** null when the query asked for `total`. */
  bucket: Date | null;
  meter: string;
  projectId: string | null;
  keyId: string | null;
  count: number;
};

/** The latest reported value of a gauge (`last`) meter for one project (or the org itself: null). */
export type GaugeValue = { meter: string; projectId: string | null; value: string; time: Date };

export type RollupQuery = {
  orgId: string;
  /** Inclusive; whole UTC hours. */
  from: Date;
  /** Exclusive; whole UTC hours. */
  to: Date;
  granularity: RollupGranularity;
  /** null: every meter. */
  meters: readonly string[] | null;
};

export type UsageStore = {
  /**
   * Write a batch inside the caller's transaction: every event whose (org, id) was not seen before is
   * inserted into the raw events (monthly partitions), its hourly rollup row updated, its unique value
   * recorded (unique_count meters) and its gauge advanced (when `gaugeMeters` has its meter and its
   * time is the latest). `events` are unique by id within the batch and sorted by id, so concurrent
   * batches take their locks in one order. Answers the ids that were new. Throws
   * `MissingUsagePartition` when an event's month has no partition yet.
   */
  insertBatch(
    orgId: string,
    events: readonly StoredUsageEvent[],
    receivedAt: Date,
    gaugeMeters: ReadonlySet<string>,
  ): Promise<string[]>;

  /** Create the monthly partitions of the raw events that cover [from, to] (idempotent, concurrent-safe). */
  ensurePartitions(from: Date, to: Date): Promise<void>;
  /** Drop the raw-event partitions whose whole month ends at or before `before`; answers their names. */
  dropPartitionsBefore(before: Date): Promise<string[]>;
  /** Forget dedup records received before `before`, at most `limit` of them; answers how many. */
  pruneDedup(before: Date, limit: number): Promise<number>;

  /** Rollups in [from, to) combined per bucket, meter, project and key. */
  rollups(query: RollupQuery): Promise<RollupBucket[]>;
  /** Distinct values of unique_count meters in [from, to) per bucket (or in total), meter and the asked dimensions. */
  uniqueCounts(
    query: RollupQuery & { meters: readonly string[]; byProject: boolean; byKey: boolean },
  ): Promise<UniqueCount[]>;
  /** Current gauge values of the org (every project), optionally only these meters. */
  gauges(orgId: string, meters: readonly string[] | null): Promise<GaugeValue[]>;
  /** Per project, the latest hourly `last` of each of `meters` in an hour before `before` (to carry history forward). */
  gaugesBefore(orgId: string, meters: readonly string[], before: Date): Promise<GaugeValue[]>;
};

/** An event's month has no partition: create it (ensurePartitions) and retry the batch. */
export class MissingUsagePartition extends Error {
  readonly times: readonly Date[];
  constructor(times: readonly Date[]) {
    super("no usage partition for an event's month");
    this.times = times;
  }
}
