import { describe, expect, it } from "vitest";
import { fingerprintOf } from "./exporter.ts";
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
