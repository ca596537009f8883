import { describe, expect, it } from "vitest";
import { freshOrRefreshing, REFRESH_AHEAD_MS, singleFlight } from "./single-flight.ts";

describe("singleFlight", () => {
  it("shares one run among concurrent calls for a key, and runs again once it settled", async () => {
    let runs = 0;
    let release: () => void = () => {};
    const load = singleFlight(async (key) => {
      runs += 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return `${key}:${runs}`;
    });
    const all = Promise.all([load("a"), load("a"), load("a")]);
    release();
    expect(await all).toEqual(["a:1", "a:1", "a:1"]);
    const again = load("a");
    release();
    expect(await again).toBe("a:2");
  });
});

describe("freshOrRefreshing", () => {
  it("answers a fresh value without reading, refreshes ahead of expiry, and reads an expired one first", async () => {
    let reads = 0;
    const refresh = async () => {
      reads += 1;
      return "new";
    };
    expect(freshOrRefreshing({ value: "old", expiresAt: 10_000 }, 0, refresh)).toBe("old");
    expect(reads).toBe(0);
    expect(
      freshOrRefreshing({ value: "old", expiresAt: 10_000 }, 10_000 - REFRESH_AHEAD_MS + 1, refresh),
    ).toBe("old");
    expect(reads).toBe(1);
    expect(await freshOrRefreshing({ value: "old", expiresAt: 10_000 }, 10_000, refresh)).toBe("new");
    expect(await freshOrRefreshing(undefined, 0, refresh)).toBe("new");
    expect(reads).toBe(3);
  });
});
