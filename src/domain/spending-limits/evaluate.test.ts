import { describe, expect, it } from "vitest";
import { normalizeDecimal } from "../../lib/decimal.ts";
import { alertEmail } from "../alerts/alert-email.ts";
import { type CreditLimits, evaluateSpending, spendingBlocked, usageBase } from "./evaluate.ts";
import { formatDecimal } from "./exact.ts";

const defaults: CreditLimits = {
  softLimit: null,
  hardLimit: null,
  thresholds: [50, 75, 90, 100],
  hardLimitAction: "block",
};

function types(
  periodUsage: string,
  allocation: string | null,
  limits = defaults,
  balance: string | null = null,
) {
  return evaluateSpending({ periodUsage, allocation, balance, limits }).due.map((d) => d.type);
}

describe("evaluateSpending", () => {
  it("fires a threshold exactly at its percentage, not just below", () => {
    expect(types("500", "1000")).toEqual(["usage_50"]);
    expect(types("499.999999999999999999", "1000")).toEqual([]);
    expect(types("750", "1000")).toEqual(["usage_50", "usage_75"]);
    expect(types("1000", "1000")).toEqual(["usage_50", "usage_75", "usage_90", "usage_100"]);
    expect(types("2500", "1000")).toEqual(["usage_50", "usage_75", "usage_90", "usage_100"]);
  });

  it("computes exactly with fractions and padded numeric strings", () => {
    expect(types("0.5", "1.000000000000000000")).toEqual(["usage_50"]);
    expect(types("0.333333333333333333", "0.666666666666666667")).toEqual([]);
    expect(types("0.333333333333333334", "0.666666666666666667")).toEqual(["usage_50"]);
  });

  it("reports the figures with the alert", () => {
    const [due] = evaluateSpending({
      periodUsage: "930",
      allocation: "1000.000",
      balance: null,
      limits: defaults,
    }).due;
    expect(due).toEqual({
      type: "usage_50",
      details: { threshold: 50, used: "930", base: "1000", base_kind: "allocation", percent: 93 },
    });
  });

  it("with no allocation (null or 0) takes percentages of the hard limit, else the soft limit, else none", () => {
    expect(types("500", null)).toEqual([]);
    expect(types("500", "0")).toEqual([]);
    const hard = { ...defaults, hardLimit: "1000" };
    expect(usageBase("0", hard)).toEqual({ kind: "hard_limit", amount: "1000" });
    expect(types("500", "0", hard)).toEqual(["usage_50"]);
    const soft = { ...defaults, softLimit: "200" };
    expect(usageBase(null, soft)).toEqual({ kind: "soft_limit", amount: "200" });
    expect(types("100", null, soft)).toEqual(["usage_50"]);
    expect(usageBase(null, { ...defaults, hardLimit: "0" })).toBeNull();
  });

  it("uses the configured thresholds, whatever they are", () => {
    expect(types("800", "1000", { ...defaults, thresholds: [80] })).toEqual(["usage_80"]);
    expect(types("10", "1000", { ...defaults, thresholds: [1] })).toEqual(["usage_1"]);
    expect(types("9", "1000", { ...defaults, thresholds: [1] })).toEqual([]);
  });

  it("fires soft_limit and hard_limit once usage reaches them; blocks only with action block", () => {
    const limits = { ...defaults, thresholds: [], softLimit: "80", hardLimit: "100" };
    expect(types("79.99", null, limits)).toEqual([]);
    expect(types("80", null, limits)).toEqual(["soft_limit"]);
    expect(types("100", null, limits)).toEqual(["soft_limit", "hard_limit"]);
    expect(evaluateSpending({ periodUsage: "99.9", allocation: null, balance: null, limits }).blocked).toBe(
      false,
    );
    expect(evaluateSpending({ periodUsage: "100", allocation: null, balance: null, limits }).blocked).toBe(
      true,
    );
    const alertOnly = { ...limits, hardLimitAction: "alert" as const };
    const evaluation = evaluateSpending({
      periodUsage: "150",
      allocation: null,
      balance: null,
      limits: alertOnly,
    });
    expect(evaluation.blocked).toBe(false);
    expect(evaluation.due.find((d) => d.type === "hard_limit")?.details.action).toBe("alert");
  });

  it("fires credits_low when the balance is below 10% of a positive allocation", () => {
    const none = { ...defaults, thresholds: [] };
    expect(types("0", "1000", none, "100")).toEqual([]);
    expect(types("0", "1000", none, "99.99")).toEqual(["credits_low"]);
    expect(types("0", "1000", none, "-5")).toEqual(["credits_low"]);
    expect(types("0", "0", none, "0")).toEqual([]);
    expect(types("0", null, none, "0")).toEqual([]);
    expect(types("0", "1000", none, null)).toEqual([]);
  });

  it("counts negative period usage (reversals only) as zero", () => {
    expect(types("-5", "1000")).toEqual([]);
    expect(spendingBlocked({ hardLimit: "0", hardLimitAction: "block" }, "-5")).toBe(true);
  });
});

describe("spendingBlocked", () => {
  it("blocks at and above the hard limit with action block, never without a hard limit", () => {
    expect(spendingBlocked({ hardLimit: "100", hardLimitAction: "block" }, "100")).toBe(true);
    expect(spendingBlocked({ hardLimit: "100", hardLimitAction: "block" }, "99.999")).toBe(false);
    expect(spendingBlocked({ hardLimit: "100", hardLimitAction: "alert" }, "1000")).toBe(false);
    expect(spendingBlocked({ hardLimit: null, hardLimitAction: "block" }, "1000")).toBe(false);
  });
});

describe("exact decimals", () => {
  it("canonicalises and formats", () => {
    expect(normalizeDecimal("100.000000000000000000")).toBe("100");
    expect(normalizeDecimal("-0.250")).toBe("-0.25");
    expect(formatDecimal("1234567.5")).toBe("1,234,567.5");
    expect(formatDecimal("900")).toBe("900");
  });
});

describe("alert emails", () => {
  it("name the organization, the figure, the period and what to do", () => {
    const email = alertEmail(
      {
        id: "alr_01jd0v4n6qf9yb5c8h2m3k7x1z",
        orgId: "org_01jd0v4n6qf9yb5c8h2m3k7x1z",
        type: "usage_90",
        periodStart: new Date("2026-11-01T00:00:00Z"),
        details: { threshold: 90, used: "900", base: "1000", base_kind: "allocation", percent: 90 },
        createdAt: new Date(),
        sentAt: null,
      },
      { name: "acme", displayName: "Acme Inc" },
      "https://orgplane.example",
    );
    expect(email.subject).toBe("Acme Inc: 90% of this period's credit allocation used");
    expect(email.text).toContain(
      "Acme Inc (org_01jd0v4n6qf9yb5c8h2m3k7x1z) has used 90% (900 of 1,000 credits) of this period's credit allocation",
    );
    expect(email.text).toContain("2026-11-01");
    expect(email.text).toContain("https://orgplane.example/docs");
    expect(email.text).toContain("billing/portal-session");
  });
});
