import type { BillingInterval } from "../catalog/catalog.types.ts";

export type SubscriptionStatus = "trialing" | "active" | "past_due" | "unpaid" | "paused" | "canceled";

/** One current subscription per organization. */
export type Subscription = {
  /** `sub_…` */
  id: string;
  orgId: string;
  planVersionId: string;
  status: SubscriptionStatus;
  interval: BillingInterval;
  /** Day of month (1–31) periods start on; clamped to the length of short months. */
  billingAnchorDay: number;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  trialEnd: Date | null;
  cancelAt: Date | null;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  pauseReason: string | null;
  seats: number;
  provider: "stripe" | null;
  providerCustomerId: string | null;
  providerSubscriptionId: string | null;
  /** Creation time of the newest provider event applied: an older event never overwrites newer state. */
  providerStateAt: Date | null;
  lastInvoiceAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
};
