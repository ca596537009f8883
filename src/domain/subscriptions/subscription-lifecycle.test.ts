import { describe, expect, it } from "vitest";
import { advance } from "./subscription-lifecycle.ts";
import type { Subscription } from "./subscriptions.types.ts";

const d = (iso: string) => new Date(iso);

function sub(overrides: Partial<Subscription> = {}): Subscription {
  return {
    id: "sub_1",
    orgId: "org_1",
    planVersionId: "pln_pro",
    status: "active",
    interval: "month",
    billingAnchorDay: 31,
    currentPeriodStart: d("2027-01-31T00:00:00.000Z"),
    currentPeriodEnd: d("2027-02-28T00:00:00.000Z"),
    trialEnd: null,
    cancelAt: null,
    cancelAtPeriodEnd: false,
    canceledAt: null,
    pauseReason: null,
    seats: 1,
    provider: null,
    providerCustomerId: null,
    providerSubscriptionId: null,
    providerStateAt: null,
    lastInvoiceAt: null,
    createdAt: d("2027-01-31T00:00:00.000Z"),
    updatedAt: d("2027-01-31T00:00:00.000Z"),
    ...overrides,
  };
}

describe("advance", () => {
  it("returns the same object when nothing is due", () => {
    const s = sub();
    const result = advance(s, "pln_free", d("2027-02-27T23:59:59.999Z"));
    expect(result.subscription).toBe(s);
    expect(result.transitions).toEqual([]);
  });

  it("ends a trial into active on the same plan", () => {
    const s = sub({ status: "trialing", trialEnd: d("2027-02-14T00:00:00.000Z") });
    const { subscription, transitions } = advance(s, "pln_free", d("2027-02-14T00:00:00.000Z"));
    expect(subscription).toMatchObject({ status: "active", planVersionId: "pln_pro" });
    expect(transitions.map((t) => t.kind)).toEqual(["trial_ended"]);
  });

  it("renews periods on the clamped anchor, several at once", () => {
    const { subscription, transitions } = advance(sub(), "pln_free", d("2027-05-01T00:00:00.000Z"));
    expect(subscription.currentPeriodStart.toISOString()).toBe("2027-04-30T00:00:00.000Z");
    expect(subscription.currentPeriodEnd.toISOString()).toBe("2027-05-31T00:00:00.000Z");
    expect(transitions).toEqual([{ kind: "period_renewed", at: d("2027-04-30T00:00:00.000Z"), periods: 3 }]);
  });

  it("applies the fallback plan when a cancellation at period end comes due, keeping the anchor", () => {
    const s = sub({ cancelAt: d("2027-02-28T00:00:00.000Z"), cancelAtPeriodEnd: true });
    const { subscription, transitions } = advance(s, "pln_free", d("2027-04-05T00:00:00.000Z"));
    expect(subscription).toMatchObject({
      planVersionId: "pln_free",
      status: "active",
      cancelAt: null,
      cancelAtPeriodEnd: false,
      billingAnchorDay: 31,
    });
    expect(subscription.currentPeriodStart.toISOString()).toBe("2027-03-31T00:00:00.000Z");
    expect(transitions.map((t) => t.kind)).toEqual(["cancellation_effective", "period_renewed"]);
  });

  it("renews on the old plan up to a later cancellation, then falls back", () => {
    const s = sub({ cancelAt: d("2027-03-31T00:00:00.000Z"), cancelAtPeriodEnd: true });
    const { subscription, transitions } = advance(s, "pln_free", d("2027-04-01T00:00:00.000Z"));
    expect(transitions.map((t) => t.kind)).toEqual(["period_renewed", "cancellation_effective"]);
    expect(subscription.planVersionId).toBe("pln_free");
    expect(subscription.currentPeriodEnd.toISOString()).toBe("2027-04-30T00:00:00.000Z");
  });

  it("ends a cancelled trial in the fallback plan", () => {
    const s = sub({
      status: "trialing",
      trialEnd: d("2027-02-14T00:00:00.000Z"),
      cancelAt: d("2027-02-14T00:00:00.000Z"),
      cancelAtPeriodEnd: true,
    });
    const { subscription } = advance(s, "pln_free", d("2027-02-15T00:00:00.000Z"));
    expect(subscription).toMatchObject({ planVersionId: "pln_free", status: "active", billingAnchorDay: 14 });
  });
});
