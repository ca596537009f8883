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

describe("singleFlight with an epoch", () => {
  it("lets a call after the epoch moved start its own load instead of joining the older one", async () => {
    let epoch = 0;
    let runs = 0;
    const releases: (() => void)[] = [];
    const load = singleFlight(
      async (key) => {
        runs += 1;
        const run = runs;
        await new Promise<void>((resolve) => releases.push(resolve));
        return `${key}:${run}`;
      },
      () => epoch,
    );
    const before = load("a");
    const alsoBefore = load("a");
    epoch += 1;
    const after = load("a");
    const alsoAfter = load("a");
    expect(runs).toBe(2);
    // The older load settling first does not drop the newer one's gate: a call now still joins the newer.
    releases[0]?.();
    expect(await Promise.all([before, alsoBefore])).toEqual(["a:1", "a:1"]);
    const joining = load("a");
    expect(runs).toBe(2);
    releases[1]?.();
    expect(await Promise.all([after, alsoAfter, joining])).toEqual(["a:2", "a:2", "a:2"]);
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
