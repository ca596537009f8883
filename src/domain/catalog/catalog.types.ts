/**
 * The catalog: what a product sells, as configuration (orgplane.yaml or a preset). Loaded into the
 * database at start; each plan edited in the file becomes a new plan version.
 */

export type BillingInterval = "month" | "year";

export type PlanPrice = {
  /** Integer minor units (cents). */
  amountMinor: number;
  /** ISO 4217, lower case. */
  currency: string;
  interval: BillingInterval;
};

export type PlanDefinition = {
  /** Stable identifier across versions, e.g. `pro`. */
  key: string;
  name: string;
  /** The platform's own tier label, e.g. `pro`, `GROWTH`, `Ship`. */
  tier: string;
  /** null: free or priced by contract. */
  price: PlanPrice | null;
  trialDays: number;
  /** Exact decimal string; null means custom (set per organization by contract). */
  monthlyCredits: string | null;
  /** Requests per minute by rate-limit category. */
  rateLimits: Record<string, number>;
  /** Any named count or size; null means unlimited. */
  quotas: Record<string, number | null>;
  features: Record<string, boolean>;
  visibility: "public" | "private";
  stripePriceId: string | null;
  /**
   * Moves an organization on this plan to another when a purchase of credits brings its balance to a
   * threshold; the highest threshold reached wins. Absent when the plan has none (so plans without rules
   * hash as before and are not versioned again).
   */
  autoUpgrade?: AutoUpgradeRule[];
};

/** `when_balance_at_least` is an exact decimal string; `plan` a plan key of the catalog. */
export type AutoUpgradeRule = { whenBalanceAtLeast: string; plan: string };

export type CatalogCategory = { key: string; description: string };
/** How a meter's events combine: summed values, a count of events, the largest value, the latest value (a gauge), or the number of distinct values. */
export type MeterAggregation = "sum" | "count" | "max" | "last" | "unique_count";

export type CatalogMeter = {
  key: string;
  unit: string;
  description: string;
  aggregation: MeterAggregation;
  /** What one unit costs in `usageCurrency` (major units, exact decimal); null: not priced. */
  costPerUnit: string | null;
  /** What one unit would cost on the benchmark (e.g. a reference model), for savings; null: none. */
  benchmarkCostPerUnit: string | null;
  /** The product-owned quota this meter's use counts against, if any. */
  quota: string | null;
};

/** What one credit costs, for spending limits set in currency. */
export type CreditPrice = {
  /** Exact decimal string, in major units of `currency` (e.g. "0.002" dollars a credit). */
  amount: string;
  /** ISO 4217, lower case. */
  currency: string;
};

export type Catalog = {
  /** The preset this catalog came from, or null for a custom file. */
  preset: string | null;
  keyPrefix: string | null;
  categories: CatalogCategory[];
  meters: CatalogMeter[];
  /** Credits per unit of each meter, as exact decimal strings. */
  creditCosts: Record<string, string>;
  /** ISO 4217, lower case: the currency of the meters' `costPerUnit`. */
  usageCurrency: string;
  plans: PlanDefinition[];
  /** Plan key a new organization starts on. */
  defaultPlan: string;
  /** Plan key an organization falls back to when a cancellation takes effect. */
  fallbackPlan: string;
  /** The price of one credit; absent: spending limits can only be set in credits. */
  creditPrice?: CreditPrice | undefined;
  /**
   * What `summary` of GET /v1/organizations/{org_id}/usage shows (the file's `usage_view`); absent: the
   * default view (usage-view.ts `defaultUsageView`: every meter's aggregate and every quota's limit and use).
   */
  usageView?: UsageView | undefined;
};

/**
 * A usage view (docs/usage-view.md): an ordered list of named fields, each a nested group of fields, a
 * source (one figure), or a list (one row per project, one point per history bucket).
 */
export type UsageView = UsageViewField[];
export type UsageViewField = { name: string; node: UsageViewNode };

/** The counts Orgplane keeps itself (the owned quotas). */
export type UsageViewCount = "projects" | "members" | "api_keys" | "invitations";

/** Sources priced per meter: credits (credit_costs), cost, benchmark cost, savings (benchmark − cost). */
export type UsageViewMoney = "credits" | "cost" | "benchmark_cost" | "savings";

export type UsageViewNode =
  /** A nested object of fields. */
  | { kind: "group"; fields: UsageViewField[] }
  /** One row per live project, oldest first; meter sources inside it are the project's. */
  | { kind: "per_project"; fields: UsageViewField[] }
  /** One point per bucket of the range: the gauge's org total at the bucket's end. */
  | { kind: "history"; meter: string; timeField: string; valueField: string }
  /** The meter's aggregate over the range. */
  | { kind: "meter"; meter: string }
  /** The sum of the meters' aggregates over the range. */
  | { kind: "meters"; meters: string[] }
  /** The gauge's current value (summed over projects). */
  | { kind: "gauge"; meter: string }
  | { kind: UsageViewMoney; meters: string[] }
  /** The plan's limit (null: unlimited or not limited), or the quota's current use. */
  | { kind: "quota_limit" | "quota_used"; quota: string }
  | { kind: "count"; of: UsageViewCount }
  /** Σ success ÷ Σ total over the 7 days before now; null when the total is 0. */
  | { kind: "rate_7d"; success: string[]; total: string[] }
  | { kind: "webhook_delivery_rate_7d" }
  /** The range's start or end (RFC 3339). */
  | { kind: "range"; bound: "from" | "to" }
  /** Inside `per_project` only: the row's project. */
  | { kind: "project"; field: "id" | "name" | "state" };

/** One stored version of a plan; subscriptions point at a version, so editing a plan moves nobody. */
export type PlanVersion = {
  /** `pln_…` */
  id: string;
  key: string;
  version: number;
  definition: PlanDefinition;
  /** SHA-256 of the canonical definition: an unchanged plan is not versioned again. */
  contentHash: string;
  /** True for the newest version of a plan that is still in the catalog. */
  isCurrent: boolean;
  createdAt: Date;
};
