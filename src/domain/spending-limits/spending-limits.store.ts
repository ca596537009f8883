import type { SpendingLimits } from "./spending-limits.types.ts";

export type SpendingLimitsStore = {
  /** The organization's limits; undefined when it never set any. */
  find(orgId: string): Promise<SpendingLimits | undefined>;
  /** Insert or replace the organization's limits. */
  upsert(limits: SpendingLimits): Promise<void>;
};
