import { describe, expect, it } from "vitest";
import { newId } from "../../lib/ids.ts";
import { auditIdFloor, auditIdMs } from "./audit-ids.ts";
import { authorizeLine, lokiPushUrl, type PendingLine } from "./loki-push.ts";
import { OrgQueue } from "./org-queue.ts";

const target = {
  orgId: "org_01jd0v4n6qf9yb5c8h2m3k7x1z",
  endpoint: "https://logs.example.com/loki/api/v1/push",
  id: "123",
  token: "glc_secret_token",
  createdAt: new Date(),
};

function line(n: number, ms = 1_700_000_000_000 + n): PendingLine {
  return {
    source: "authorize",
    ms,
    text: authorizeLine({
      orgId: target.orgId,
      projectId: null,
      keyId: "key_01jd0v4n6qf9yb5c8h2m3k7x1z",
      category: "search",
      allowed: false,
      reason: "rate_limited",
      cost: n,
      limit: undefined,
      at: new Date(ms),
    }),
  };
}

function costs(body: string): number[] {
  const parsed = JSON.parse(body) as { streams: Array<{ values: Array<[string, string]> }> };
  return parsed.streams.flatMap((s) => s.values.map(([, l]) => (JSON.parse(l) as { cost: number }).cost));
}

describe("audit id bounds", () => {
  it("reads the minting time out of an audit id, and bounds ids by time", () => {
    const before = Date.now();
    const id = newId("aud");
    const after = Date.now();
    const ms = auditIdMs(id);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
    expect(auditIdFloor(ms) < id).toBe(true);
    expect(auditIdFloor(ms + 1) > id).toBe(true);
    expect(auditIdMs(auditIdFloor(ms))).toBe(ms);
    expect(auditIdMs("org_01jd0v4n6qf9yb5c8h2m3k7x1z")).toBeNaN();
  });
});

describe("lokiPushUrl", () => {
  it("keeps a push URL and appends the push path to a base URL", () => {
    expect(lokiPushUrl("https://logs.example.com/loki/api/v1/push")).toBe(
      "https://logs.example.com/loki/api/v1/push",
    );
    expect(lokiPushUrl("https://logs.example.com")).toBe("https://logs.example.com/loki/api/v1/push");
    expect(lokiPushUrl("https://logs.example.com/tenant-a/")).toBe(
      "https://logs.example.com/tenant-a/loki/api/v1/push",
    );
    expect(lokiPushUrl("https://logs.example.com/loki/api/v1/push/?x=1")).toBe(
      "https://logs.example.com/loki/api/v1/push?x=1",
    );
  });
});

describe("OrgQueue", () => {
  it("drops the oldest lines beyond its capacity and counts them", () => {
    const queue = new OrgQueue(target, 3, "test");
    for (let i = 0; i < 5; i++) {
      queue.append(line(i), 0);
    }
    expect(queue.waiting()).toBe(3);
    expect(queue.droppedLines).toBe(2);
    expect(costs(queue.take(1024 * 1024).body)).toEqual([2, 3, 4]);
  });

  it("puts a failed batch back in front, where the bound applies to it too", () => {
    const queue = new OrgQueue(target, 4, "test");
    for (let i = 0; i < 3; i++) {
      queue.append(line(i), 0);
    }
    queue.take(1024 * 1024);
    queue.append(line(3), 0);
    queue.append(line(4), 0);
    queue.failed("HTTP 503", 1000);
    expect(queue.waiting()).toBe(4);
    expect(queue.droppedLines).toBe(1);
    expect(queue.failures).toBe(1);
    expect(costs(queue.take(1024 * 1024).body)).toEqual([1, 2, 3, 4]);
    queue.rejected("HTTP 400");
    expect(queue.droppedBatches).toBe(1);
    expect(queue.droppedLines).toBe(5);
  });

  it("cuts batches at the byte bound and orders each stream by time", () => {
    const queue = new OrgQueue(target, 100, "test");
    for (let i = 0; i < 10; i++) {
      // Arriving out of order: Loki wants each stream's entries in timestamp order.
      queue.append(line(i, 1_700_000_000_000 + (10 - i)), 0);
    }
    const first = queue.take(2048);
    expect(Buffer.byteLength(first.body)).toBeLessThanOrEqual(2048);
    const sent = costs(first.body);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.length).toBeLessThan(10);
    expect(sent).toEqual([...sent].sort((x, y) => y - x));
    queue.succeeded();
    expect(costs(queue.take(1024 * 1024).body)).toHaveLength(10 - sent.length);
  });
});
