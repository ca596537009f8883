import { describe, expect, it } from "vitest";
import { isoString } from "./iso-time.ts";

describe("isoString", () => {
  it("equals toISOString across milliseconds, seconds, days, leap days and the edges of four-digit years", () => {
    const instants = [
      0,
      1,
      9,
      10,
      99,
      100,
      999,
      1000,
      Date.UTC(2024, 1, 29, 23, 59, 59, 999),
      Date.UTC(2024, 2, 1),
      Date.UTC(2026, 10, 26, 8, 5, 28, 771),
      Date.UTC(2026, 10, 26, 8, 5, 28, 7),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999),
      Date.UTC(9999, 11, 31, 23, 59, 59, 999) + 1,
      -1,
      -62_198_755_200_000,
      8.64e15,
    ];
    // Alternating seconds, so every call meets both a cached and a changed second.
    for (let i = 0; i < 5000; i++) {
      instants.push(Date.UTC(2026, 0, 1) + i * 997 + (i % 2) * 86_400_000);
    }
    for (const ms of instants) {
      const date = new Date(ms);
      expect(isoString(date)).toBe(date.toISOString());
      expect(isoString(date)).toBe(date.toISOString());
    }
  });

  it("throws as toISOString does for an invalid date", () => {
    expect(() => isoString(new Date(Number.NaN))).toThrow(RangeError);
  });
});
