import type { Subscription } from "./subscriptions.types.ts";

export type SubscriptionsStore = {
  findByOrg(orgId: string): Promise<Subscription | undefined>;
  /** Like `findByOrg`, row-locking the subscription for the rest of the transaction. */
  findByOrgForUpdate(orgId: string): Promise<Subscription | undefined>;
  /** False when the organization already has a subscription (one per organization). */
  insert(subscription: Subscription): Promise<boolean>;
  /**
   * Writes the plan and lifecycle fields Orgplane owns (plan version, status, interval, anchor, period,
   * trial, cancellation, seats, updated_at). Provider fields belong to the Stripe sync and are left alone.
   */
  updateLifecycle(subscription: Subscription): Promise<void>;
  /**
   * Organizations whose subscription has a trial end, cancellation or period end at or before `now`,
   * locked `FOR UPDATE SKIP LOCKED` so parallel sweeps take disjoint batches. Call inside a transaction.
   */
  lockDue(now: Date, limit: number): Promise<Subscription[]>;
  /**
   * Trialing subscriptions of live organizations whose trial ends after `now` and at or before `until`,
   * skipping organizations with a `trial_ending` alert recorded since `alertedSince` (already told). Soonest
   * trial end first. Not locked: the alert's unique key is what makes it fire once.
   */
  listTrialsEnding(query: {
    now: Date;
    until: Date;
    alertedSince: Date;
    limit: number;
  }): Promise<Subscription[]>;
};

/** The count quotas Orgplane owns, counted from its own tables. */
export type OwnedQuota = "members" | "projects" | "api_keys" | "invitations";

export type QuotaUsageStore = {
  /** Members; live projects; active (unrevoked, unexpired) API keys; pending invitations. */
  count(orgId: string, quota: OwnedQuota, now: Date): Promise<number>;
};
