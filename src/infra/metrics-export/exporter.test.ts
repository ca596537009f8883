import { describe, expect, it } from "vitest";
import { fingerprintOf, placeOf } from "./exporter.ts";
import { FAMILIES, type MetricSample } from "./org-metrics.ts";

function sample(
  values: string[],
  value: number,
  family: MetricSample["family"] = FAMILIES.requests,
): MetricSample {
  return { family, labels: values.map((v, i) => ({ name: `l${i}`, value: v })), value };
}

describe("fingerprintOf", () => {
  it("is equal for the same series and values", () => {
    const a = [sample(["org_1", "search", "allowed"], 3), sample(["org_1", "search", "rate_limited"], 1)];
    const b = [sample(["org_1", "search", "allowed"], 3), sample(["org_1", "search", "rate_limited"], 1)];
    expect(fingerprintOf(a)).toBe(fingerprintOf(b));
    expect(Number.isSafeInteger(fingerprintOf(a))).toBe(true);
  });

  it("differs when a value, a label value, a family, the order or the count differs", () => {
    const base = [sample(["org_1", "search", "allowed"], 3), sample(["org_1", "search", "rate_limited"], 1)];
    const seen = new Set<number>([fingerprintOf(base)]);
    const variants: MetricSample[][] = [
      [sample(["org_1", "search", "allowed"], 4), base[1] as MetricSample],
      [sample(["org_1", "search", "allowed"], 3.0000000000000004), base[1] as MetricSample],
      [sample(["org_2", "search", "allowed"], 3), base[1] as MetricSample],
      // The same characters, split between two labels differently.
      [sample(["org_1", "searcha", "llowed"], 3), base[1] as MetricSample],
      [sample(["org_1", "search", "allowed"], 3, FAMILIES.decisions), base[1] as MetricSample],
      [base[1] as MetricSample, base[0] as MetricSample],
      [base[0] as MetricSample],
      [],
    ];
    for (const variant of variants) {
      const fingerprint = fingerprintOf(variant);
      expect(seen.has(fingerprint)).toBe(false);
      seen.add(fingerprint);
    }
  });

  it("spreads a counter's successive values over distinct fingerprints", () => {
    const seen = new Set<number>();
    for (let n = 0; n < 100_000; n++) {
      seen.add(fingerprintOf([sample(["org_1", "search", "allowed"], n)]));
    }
    expect(seen.size).toBe(100_000);
  });
});

describe("placeOf", () => {
  it("picks an organization's resend interval independently of its place within the interval", () => {
    // For each quarter of the interval (by share) and each of 4 resend slots: how many of 10,000 orgs. Were the
    // slot to follow the share, the orgs resent together would all push within one quarter of an interval.
    const cells = Array.from({ length: 4 }, () => [0, 0, 0, 0]);
    for (let i = 0; i < 10_000; i++) {
      const place = placeOf(`org_${i}`, 4, 4);
      expect(place.share).toBeGreaterThanOrEqual(0);
      expect(place.share).toBeLessThan(1);
      // The same slot for both periods when they are equal: the figures are read in the resend's interval.
      expect(place.figuresSlot).toBe(place.resendSlot);
      const row = cells[Math.floor(place.share * 4)];
      if (row !== undefined) {
        row[place.resendSlot] = (row[place.resendSlot] ?? 0) + 1;
      }
    }
    // 625 expected in each of the 16 cells; the spread of a fair split is about 24.
    for (const row of cells) {
      for (const n of row) {
        expect(n).toBeGreaterThan(500);
        expect(n).toBeLessThan(750);
      }
    }
  });

  it("keeps slots within their periods", () => {
    for (let i = 0; i < 1000; i++) {
      const place = placeOf(`org_${i}`, 3, 7);
      expect([0, 1, 2]).toContain(place.resendSlot);
      expect(place.figuresSlot).toBeGreaterThanOrEqual(0);
      expect(place.figuresSlot).toBeLessThan(7);
      expect(placeOf(`org_${i}`, 1).resendSlot).toBe(0);
    }
  });
});
