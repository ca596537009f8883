import { anchorDayOf, periodEnd, rollPeriod } from "../../lib/billing-period.ts";
import type { Subscription } from "./subscriptions.types.ts";

/** A time-driven change `advance` applied, in the order it happened. */
export type Transition =
  | { kind: "trial_ended"; at: Date }
  | { kind: "cancellation_effective"; at: Date; fromPlanVersionId: string }
  | { kind: "period_renewed"; at: Date; periods: number };

/**
 * Apply every time-driven transition due at `now`, oldest first. Pure: the caller persists the result.
 *
 * - A trial ends at `trial_end`: the subscription becomes `active` on the same plan. (Without a payment
 *   provider Orgplane cannot know whether anyone will pay; a failed payment arrives from Stripe as
 *   `past_due`. A trial the customer cancelled ends in the fallback plan instead: DELETE during a trial
 *   sets `cancel_at` to the trial end.)
 * - A cancellation takes effect at `cancel_at`: the fallback plan applies, status `active`, with a new
 *   period starting then.
 * - A period that has ended rolls forward on the anchor day, as many periods as have passed.
 */
export function advance(
  subscription: Subscription,
  fallbackPlanVersionId: string,
  now: Date,
): { subscription: Subscription; transitions: Transition[] } {
  let sub = subscription;
  const transitions: Transition[] = [];
  const t = now.getTime();

  if (sub.status === "trialing" && sub.trialEnd !== null && sub.trialEnd.getTime() <= t) {
    const cancelAtTrialEnd = sub.cancelAt !== null && sub.cancelAt.getTime() <= sub.trialEnd.getTime();
    if (!cancelAtTrialEnd) {
      sub = { ...sub, status: "active" };
      transitions.push({ kind: "trial_ended", at: sub.trialEnd ?? now });
    }
  }

  // Periods that ended before the cancellation are renewals on the old plan; a period ending exactly at
  // the cancellation is the last one on it (rollPeriod keeps the period whose end is after its argument).
  const cancelAt = sub.cancelAt;
  const cancelDue = cancelAt !== null && cancelAt.getTime() <= t;
  const renewed = rollPeriod(
    { start: sub.currentPeriodStart, end: sub.currentPeriodEnd },
    sub.billingAnchorDay,
    sub.interval,
    cancelDue ? new Date(cancelAt.getTime() - 1) : now,
  );
  if (renewed.rolled > 0) {
    sub = { ...sub, currentPeriodStart: renewed.start, currentPeriodEnd: renewed.end };
    transitions.push({ kind: "period_renewed", at: renewed.start, periods: renewed.rolled });
  }

  if (cancelDue) {
    // At a period boundary the anchor stays (Jan 31 stays 31 through February); mid-period it moves.
    const anchor =
      cancelAt.getTime() === sub.currentPeriodEnd.getTime() ? sub.billingAnchorDay : anchorDayOf(cancelAt);
    const fromPlanVersionId = sub.planVersionId;
    const fresh = rollPeriod(
      { start: cancelAt, end: periodEnd(cancelAt, anchor, sub.interval) },
      anchor,
      sub.interval,
      now,
    );
    sub = {
      ...sub,
      planVersionId: fallbackPlanVersionId,
      status: "active",
      billingAnchorDay: anchor,
      currentPeriodStart: fresh.start,
      currentPeriodEnd: fresh.end,
      cancelAt: null,
      cancelAtPeriodEnd: false,
      trialEnd: sub.status === "trialing" ? cancelAt : sub.trialEnd,
    };
    transitions.push({ kind: "cancellation_effective", at: cancelAt, fromPlanVersionId });
    if (fresh.rolled > 0) {
      transitions.push({ kind: "period_renewed", at: fresh.start, periods: fresh.rolled });
    }
  }

  return { subscription: transitions.length === 0 ? subscription : sub, transitions };
}
