import { type Period, periodEnd, rollPeriod } from "../../lib/billing-period.ts";
import type { Subscription } from "../subscriptions/subscriptions.types.ts";

/**
 * The credit period an alert belongs to: the same one the ledger uses (credits.service.ts) — monthly,
 * anchored on the subscription's billing anchor, so a yearly subscription gets twelve periods of alerts a
 * year, as it gets twelve allocations. `test/http/alerts.test.ts` checks the two agree.
 */
export function creditPeriodOf(
  subscription: Pick<Subscription, "currentPeriodStart" | "billingAnchorDay">,
  now: Date,
): Period {
  const { currentPeriodStart: start, billingAnchorDay: anchor } = subscription;
  const rolled = rollPeriod({ start, end: periodEnd(start, anchor, "month") }, anchor, "month", now);
  return { start: rolled.start, end: rolled.end };
}
