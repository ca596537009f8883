import { describe, expect, it } from "vitest";
import { auditIdFloor } from "./audit-ids.ts";
import { createAuditReader } from "./audit-reader.ts";
import { OrgQueue } from "./org-queue.ts";
import type { AuditCursor, AuditLogRow, LokiAuditSource } from "./types.ts";

/*
 * Which cursors a save writes. The reader runs over an in-memory audit trail here (the database-backed source
 * and restarts are exercised end to end in test/loki-export.test.ts); what is checked is the reader's own rule.
 */

const START = 1_800_000_000_000;
const IDLE_SAVE_MS = 10 * 60_000;
const SETTINGS = {
  lagMs: 1000,
  overlapMs: 5000,
  pageSize: 100,
  catchUpMs: 3_600_000,
  startMarginMs: 1000,
  namedOrgsMax: 500,
  idleSaveMs: IDLE_SAVE_MS,
};

/** An audit id minted at `ms` (above the floor of that millisecond, as a real one is). */
function idAt(ms: number, n: number): string {
  return `${auditIdFloor(ms).slice(0, -2)}${String(n).padStart(2, "0")}`;
}

function setUp() {
  let now = START;
  const trail: AuditLogRow[] = [];
  const saved: Array<Array<{ orgId: string } & AuditCursor>> = [];
  const source: LokiAuditSource = {
    lead: async () => true,
    read: async ({ afterId, beforeId, limit }) =>
      trail.filter((r) => r.id > afterId && r.id < beforeId).slice(0, limit),
    loadCursors: async () => new Map(),
    saveCursors: async (cursors) => {
      saved.push(cursors.map((c) => ({ ...c })));
    },
    close: async () => {},
  };
  const queues = new Map<string, OrgQueue>();
  for (const orgId of ["org_idle", "org_busy"]) {
    queues.set(
      orgId,
      new OrgQueue(
        { orgId, endpoint: "https://logs.example.com", id: "1", token: "t", createdAt: new Date(START) },
        1000,
        "test",
      ),
    );
  }
  const reader = createAuditReader({
    source,
    queues,
    queuesVersion: () => 1,
    clock: { now: () => new Date(now) },
    settings: SETTINGS,
    queued: () => {},
  });
  return {
    reader,
    /** Which orgs the last save wrote (none when it wrote nothing). */
    async save(all = false): Promise<string[]> {
      const before = saved.length;
      await reader.save(all);
      return saved.length === before ? [] : (saved.at(-1) ?? []).map((c) => c.orgId).sort();
    },
    advance(ms: number) {
      now += ms;
    },
    event(orgId: string, n: number) {
      trail.push({
        id: idAt(now, n),
        orgId,
        actorType: "operator",
        actorId: null,
        action: "organization.updated",
        targetType: "organization",
        targetId: orgId,
        changesJson: "{}",
        ip: null,
        userAgent: null,
        requestId: null,
        createdAt: new Date(now),
      });
    },
    /** Every queued line is delivered (a healthy Loki), so none holds a cursor back. */
    deliver() {
      for (const queue of queues.values()) {
        if (queue.waiting() > 0) {
          queue.take(1 << 20);
          queue.succeeded();
        }
      }
    },
  };
}

describe("audit cursor saves", () => {
  it("write an org with events read at the next save, and an idle org's cursor only once it is far behind", async () => {
    const r = setUp();
    await r.reader.poll();
    // No cursor yet: both are written at once.
    expect(await r.save()).toEqual(["org_busy", "org_idle"]);

    r.advance(30_000);
    r.event("org_busy", 1);
    r.advance(3000);
    await r.reader.poll();
    r.deliver();
    // The busy org read an event; the idle one only moved with time.
    expect(await r.save()).toEqual(["org_busy"]);

    // An event read and already past the overlap by the save (no recent id left): still written, or a
    // restart would read it again from the last cursor and send it twice.
    r.advance(1000);
    r.event("org_busy", 2);
    r.advance(3000);
    await r.reader.poll();
    r.deliver();
    r.advance(20_000);
    await r.reader.poll();
    expect(await r.save()).toEqual(["org_busy"]);

    // Nothing read since: the busy org's cursor (with its recent ids gone) is written once more, as it is no
    // longer idle in its last save; then neither until the idle save is due.
    r.advance(30_000);
    await r.reader.poll();
    expect(await r.save()).toEqual(["org_busy"]);
    r.advance(30_000);
    await r.reader.poll();
    expect(await r.save()).toEqual([]);

    r.advance(IDLE_SAVE_MS);
    await r.reader.poll();
    expect(await r.save()).toEqual(["org_busy", "org_idle"]);

    // At stop, every cursor that moved is written.
    r.advance(30_000);
    await r.reader.poll();
    expect(await r.save()).toEqual([]);
    expect(await r.save(true)).toEqual(["org_busy", "org_idle"]);
  });
});
