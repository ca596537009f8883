import { describe, expect, it } from "vitest";
import { newId } from "../../lib/ids.ts";
import { auditIdFloor, auditIdMs } from "./audit-ids.ts";
import { type AuditLine, authorizeLine, lokiPushUrl } from "./loki-push.ts";
import { OrgQueue } from "./org-queue.ts";

const target = {
  orgId: "org_01jd0v4n6qf9yb5c8h2m3k7x1z",
  endpoint: "https://logs.example.com/loki/api/v1/push",
  id: "123",
  token: "glc_secret_token",
  createdAt: new Date(),
};

/** Appends an authorize decision's line whose `cost` is n (the tests' tag for a line). */
function deny(queue: OrgQueue, n: number, ms = 1_700_000_000_000 + n): void {
  queue.appendAuthorize(
    ms,
    authorizeLine({
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
    0,
  );
}

function audit(n: number, ms: number): AuditLine {
  return { id: `aud_${n}`, ms, idMs: ms, text: JSON.stringify({ id: `aud_${n}`, cost: n }) };
}

type Body = { streams: Array<{ stream: Record<string, string>; values: Array<[string, string]> }> };

function parse(body: Buffer): Body {
  return JSON.parse(body.toString("utf8")) as Body;
}

/** Each line's tag, stream by stream (audit first). */
function costs(body: Buffer): number[] {
  return parse(body).streams.flatMap((s) =>
    s.values.map(([, l]) => (JSON.parse(l) as { cost: number }).cost),
  );
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
      deny(queue, i);
    }
    expect(queue.waiting()).toBe(3);
    expect(queue.droppedLines).toBe(2);
    expect(costs(queue.take(1024 * 1024).body)).toEqual([2, 3, 4]);
  });

  it("puts a failed batch back in front, where the bound applies to it too", () => {
    const queue = new OrgQueue(target, 4, "test");
    for (let i = 0; i < 3; i++) {
      deny(queue, i);
    }
    queue.take(1024 * 1024);
    deny(queue, 3);
    deny(queue, 4);
    queue.failed("HTTP 503", 1000);
    expect(queue.waiting()).toBe(4);
    expect(queue.droppedLines).toBe(1);
    expect(queue.failures).toBe(1);
    expect(costs(queue.take(1024 * 1024).body)).toEqual([1, 2, 3, 4]);
    queue.rejected("HTTP 400");
    expect(queue.droppedBatches).toBe(1);
    expect(queue.droppedLines).toBe(5);
    expect(queue.waiting()).toBe(0);
  });

  it("cuts batches at the byte bound and sends every line once, in order", () => {
    const queue = new OrgQueue(target, 10_000, "test");
    const sent: number[] = [];
    let next = 0;
    // Appends and takes interleaved, so the buffer of values both grows and reuses its room.
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 97; i++) {
        deny(queue, next++);
      }
      const batch = queue.take(4096);
      expect(batch.body.length).toBeLessThanOrEqual(4096);
      expect(batch.lines).toBeGreaterThan(0);
      sent.push(...costs(batch.body));
      queue.succeeded();
    }
    while (queue.waiting() > 0) {
      sent.push(...costs(queue.take(64 * 1024).body));
      queue.succeeded();
    }
    expect(sent).toEqual(Array.from({ length: next }, (_, i) => i));
  });

  it("orders the audit stream by time and never lets an authorize timestamp go back", () => {
    const queue = new OrgQueue(target, 100, "test");
    const base = 1_700_000_000_000;
    for (let i = 0; i < 5; i++) {
      // Audit events are read in id order; their created_at may differ from it.
      queue.append(audit(i, base + (10 - i)), 0);
    }
    deny(queue, 10, base + 50);
    // The wall clock stepped back: the line keeps its order and takes the previous timestamp.
    deny(queue, 11, base + 20);
    deny(queue, 12, base + 60);
    const body = parse(queue.take(1024 * 1024).body);
    expect(body.streams.map((s) => s.stream.source)).toEqual(["audit", "authorize"]);
    expect(body.streams[1]?.stream).toEqual({ org_id: target.orgId, source: "authorize", instance: "test" });
    const [auditStream, authorizeStream] = body.streams;
    expect(auditStream?.values.map(([ns]) => ns)).toEqual([6, 7, 8, 9, 10].map((d) => `${base + d}000000`));
    expect(authorizeStream?.values.map(([ns]) => ns)).toEqual([50, 50, 60].map((d) => `${base + d}000000`));
    expect(authorizeStream?.values.map(([, l]) => (JSON.parse(l) as { cost: number }).cost)).toEqual([
      10, 11, 12,
    ]);
  });

  it("puts audit and authorize lines back in their arrival order, and knows which audit ids are not delivered", () => {
    const queue = new OrgQueue(target, 5, "test");
    const base = 1_700_000_000_000;
    deny(queue, 0, base);
    queue.append(audit(1, base + 1), 0);
    deny(queue, 2, base + 2);
    queue.append(audit(3, base + 3), 0);
    const first = queue.take(1024 * 1024);
    expect(first.lines).toBe(4);
    expect(queue.undeliveredAudit()).toEqual({ earliestIdMs: base + 1, ids: new Set(["aud_1", "aud_3"]) });
    deny(queue, 4, base + 4);
    deny(queue, 5, base + 5);
    queue.failed("HTTP 503", 1000);
    // Six lines for five places: the oldest (an authorize line) goes.
    expect(queue.waiting()).toBe(5);
    expect(queue.droppedLines).toBe(1);
    queue.append(audit(6, base + 6), 0);
    // And now audit line 1, the oldest.
    expect(queue.droppedLines).toBe(2);
    expect(queue.undeliveredAudit()).toEqual({ earliestIdMs: base + 3, ids: new Set(["aud_3", "aud_6"]) });
    const again = queue.take(1024 * 1024);
    expect(costs(again.body)).toEqual([3, 6, 2, 4, 5]);
    queue.succeeded();
    expect(queue.undeliveredAudit()).toBeUndefined();
    expect(queue.waiting()).toBe(0);
  });

  it("sends a line larger than the bound by itself", () => {
    const queue = new OrgQueue(target, 10, "test");
    queue.append({ ...audit(0, 1), text: JSON.stringify({ cost: 0, pad: "é".repeat(3000) }) }, 0);
    deny(queue, 1);
    const first = queue.take(2048);
    expect(first.lines).toBe(1);
    expect(costs(first.body)).toEqual([0]);
    queue.succeeded();
    expect(costs(queue.take(2048).body)).toEqual([1]);
  });
});
