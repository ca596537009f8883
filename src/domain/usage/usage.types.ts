import type { OwnedQuota } from "../subscriptions/subscriptions.store.ts";

/** A range's aggregate of one meter: its value per the meter's aggregation and the credits it cost. */
export type MeterTotal = {
  /** Sum, count, max, last (summed across projects) or distinct count, per the meter's aggregation. */
  value: number;
  /** Exact decimal string. */
  credits: string;
};

/** A project as the usage view shows it. */
export type UsageProject = { id: string; name: string; state: "active" | "archived" };

/**
 * Everything a usage view (the catalog's `usage_view`, rendered by usage-view.ts) can draw on, for one
 * organization and one range. The service fills only what `viewNeeds(view)` says the view uses; a part
 * not asked for is empty.
 */
export type UsageViewData = {
  range: { from: Date; to: Date };
  /** The plan's quotas (null: unlimited); a quota the plan does not name is absent. */
  quotas: Record<string, number | null>;
  /** Every meter's aggregate over the range (meters without events: value 0, credits "0"). */
  totals: Map<string, MeterTotal>;
  /** The same per project (null: events reported for the org itself). */
  byProject: Map<string | null, Map<string, MeterTotal>>;
  /** Current gauge values per meter, summed over projects; and per project. */
  gauges: Map<string, number>;
  gaugesByProject: Map<string | null, Map<string, number>>;
  /** Aggregates of the meters named by `rate_7d` sources over the 7 days before now. */
  last7Days: Map<string, number>;
  /** Orgplane's own counts (members, live projects, active keys, pending invitations). */
  counts: Record<OwnedQuota, number>;
  /** A product-owned quota's current use (as quotas/{quota}/check counts it). */
  quotaUsed: Map<string, number>;
  /** Live projects, oldest first. */
  projects: UsageProject[];
  /** Per meter asked by a `history` node: the org total at the end of each bucket of the range, carried forward. */
  history: Map<string, { at: Date; value: number }[]>;
  /** Share of webhook deliveries that succeeded over 7 days; null when there were none. */
  webhookDeliveryRate7d: number | null;
};

/** What parts of UsageViewData a view uses, so the service queries only those. */
export type UsageViewNeeds = {
  /** Meters whose 7-day aggregate is used. */
  last7Days: string[];
  /** Gauge meters whose history is used. */
  history: string[];
  gauges: boolean;
  byProject: boolean;
  /** Which of Orgplane's own counts are shown. */
  counts: OwnedQuota[];
  projects: boolean;
  /** Product-owned quotas whose current use is shown. */
  quotaUsed: string[];
  webhookDeliveryRate7d: boolean;
};
