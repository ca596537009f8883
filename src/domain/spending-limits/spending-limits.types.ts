/** What a spending limit is counted in: credits, or the organization's currency (organizations.currency). */
export type SpendingUnit = "currency" | "credits";

/** `block`: billable requests are refused once the hard limit is reached; `alert`: only the alert fires. */
export type HardLimitAction = "block" | "alert";

/** The thresholds (percent) a new organization is alerted at, as the reference platforms do. */
export const DEFAULT_THRESHOLDS: readonly number[] = [50, 75, 90, 100];

/** At most this many thresholds: ten emails a period is already a lot. */
export const MAX_THRESHOLDS = 10;

/** An organization's spending limits for each billing period. */
export type SpendingLimits = {
  orgId: string;
  unit: SpendingUnit;
  /** Exact decimal strings (no trailing zeros); null: no such limit. */
  softLimit: string | null;
  hardLimit: string | null;
  /** Percentages, 1–100, strictly increasing. */
  thresholds: number[];
  hardLimitAction: HardLimitAction;
  updatedAt: Date;
  /** The principal id that last set them. */
  updatedBy: string | null;
};

/** What `PUT …/spending-limits` sets (the whole object: absent fields take their defaults). */
export type SpendingLimitsInput = {
  unit: SpendingUnit;
  softLimit: string | null;
  hardLimit: string | null;
  thresholds: number[];
  hardLimitAction: HardLimitAction;
};

/** The limits of an organization, or the defaults (`configured: false`) when it never set any. */
export type SpendingLimitsView = Omit<SpendingLimits, "updatedAt"> & {
  configured: boolean;
  updatedAt: Date | null;
};
