import { describe, expect, it } from "vitest";
import { anchorDayOf, daysInMonth, periodEnd, rollPeriod } from "./billing-period.ts";

const d = (iso: string) => new Date(iso);

describe("billing periods", () => {
  it("knows the length of February in leap and common years", () => {
    expect(daysInMonth(2026, 1)).toBe(28);
    expect(daysInMonth(2028, 1)).toBe(29);
    expect(daysInMonth(2100, 1)).toBe(28);
    expect(daysInMonth(2000, 1)).toBe(29);
  });

  it("clamps a Jan 31 anchor to Feb 28, then returns to Mar 31", () => {
    const start = d("2027-01-31T10:00:00.000Z");
    const anchor = anchorDayOf(start);
    const feb = periodEnd(start, anchor, "month");
    expect(feb.toISOString()).toBe("2027-02-28T10:00:00.000Z");
    expect(periodEnd(feb, anchor, "month").toISOString()).toBe("2027-03-31T10:00:00.000Z");
  });

  it("ends a Jan 31 period on Feb 29 in a leap year", () => {
    expect(periodEnd(d("2028-01-31T00:00:00.000Z"), 31, "month").toISOString()).toBe(
      "2028-02-29T00:00:00.000Z",
    );
  });

  it("clamps to 30-day months and crosses the year", () => {
    expect(periodEnd(d("2027-03-31T00:00:00.000Z"), 31, "month").toISOString()).toBe(
      "2027-04-30T00:00:00.000Z",
    );
    expect(periodEnd(d("2027-12-15T08:30:00.000Z"), 15, "month").toISOString()).toBe(
      "2028-01-15T08:30:00.000Z",
    );
  });

  it("adds a year, clamping Feb 29 to Feb 28", () => {
    expect(periodEnd(d("2028-02-29T00:00:00.000Z"), 29, "year").toISOString()).toBe(
      "2029-02-28T00:00:00.000Z",
    );
    expect(periodEnd(d("2027-05-10T00:00:00.000Z"), 10, "year").toISOString()).toBe(
      "2028-05-10T00:00:00.000Z",
    );
  });

  it("rolls a stale period forward until it contains now", () => {
    const rolled = rollPeriod(
      { start: d("2027-01-31T00:00:00.000Z"), end: d("2027-02-28T00:00:00.000Z") },
      31,
      "month",
      d("2027-04-05T00:00:00.000Z"),
    );
    expect(rolled.start.toISOString()).toBe("2027-03-31T00:00:00.000Z");
    expect(rolled.end.toISOString()).toBe("2027-04-30T00:00:00.000Z");
    expect(rolled.rolled).toBe(2);
  });

  it("leaves a current period alone", () => {
    const period = { start: d("2027-01-01T00:00:00.000Z"), end: d("2027-02-01T00:00:00.000Z") };
    expect(rollPeriod(period, 1, "month", d("2027-01-15T00:00:00.000Z")).rolled).toBe(0);
  });

  it("refuses an anchor day outside 1–31", () => {
    expect(() => periodEnd(d("2027-01-01T00:00:00.000Z"), 0, "month")).toThrow(RangeError);
  });
});
