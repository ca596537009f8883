import type { RateLimitOverride } from "./rate-limits.types.ts";

export type RateLimitOverridesStore = {
  /** Every override of the organization, org-wide and per project: one read serves every request. */
  listForOrg(orgId: string): Promise<RateLimitOverride[]>;
  upsert(override: RateLimitOverride): Promise<void>;
  remove(orgId: string, scopeId: string, category: string): Promise<void>;
};
