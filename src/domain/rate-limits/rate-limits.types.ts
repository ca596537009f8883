/** Where an effective limit comes from; the most specific one wins: key > project > org > plan. */
export type LimitSource = "plan" | "org" | "project" | "key";

export type RateLimitOverride = {
  orgId: string;
  /** The organization's own id (org-wide) or one of its projects' ids. */
  scopeId: string;
  category: string;
  requestsPerMinute: number;
  updatedAt: Date;
};

/** One category's limit as it applies, in requests per minute, and the layer it came from. */
export type EffectiveLimit = { category: string; requestsPerMinute: number; source: LimitSource };

/** `{category: rpm}` to set, `{category: null}` to remove an override. */
export type RateLimitChanges = Record<string, number | null>;
