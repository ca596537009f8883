import type { Clock } from "../../lib/clock.ts";
import { auditIdFloor, auditIdMs } from "./audit-ids.ts";
import { auditLine } from "./loki-push.ts";
import type { OrgQueue } from "./org-queue.ts";
import type { AuditCursor, LokiAuditSource } from "./types.ts";

/**
 * A cursor row keeps at most this many ids of the stretch a restart reads again; an org writing more audit
 * events than this in one overlap window may see some of them twice after a restart.
 */
const MAX_RECENT_IDS = 5_000;

export type AuditReaderSettings = {
  /** Only events minted more than this long ago are read: most transactions have committed by then. */
  lagMs: number;
  /**
   * Every read starts this far before where the last one ended, so an event whose transaction committed late
   * (up to lag + overlap after its id was minted) is still found; ids already sent are skipped.
   */
  overlapMs: number;
  /** Events read per round trip; a full page is followed by the next one at the next poll. */
  pageSize: number;
  /** A cursor further back than this (a long outage of every process) starts here instead. */
  catchUpMs: number;
  /**
   * An org without a cursor starts this long before it configured Loki, so the audit event of that change
   * (written in the same transaction, its id minted a moment before or after) is sent too.
   */
  startMarginMs: number;
  /**
   * Up to this many exporting organizations, a read names them; beyond, it reads every organization's events
   * of the stretch and drops the others' here: naming 10,000 orgs every second (an array PostgreSQL must
   * parse and test each row against) costs more than reading the rest of the second's events.
   */
  namedOrgsMax: number;
  /**
   * An org with no audit event read since its cursor was saved, none held and none recent only moves its
   * cursor forward with time: that is written at most this often (and at stop). After a crash such an org's
   * read starts up to this much earlier and finds nothing new; 10,000 idle orgs are not written every save.
   */
  idleSaveMs: number;
};

type OrgReadState = {
  /** Events minted before this were handled (or precede the org's export): never read again. */
  afterMs: number;
  /** Every event minted before this was read (reading continues from `afterMs` for late commits). */
  throughMs: number;
  /** Ids sent (or queued, or dropped) with id time at or after `afterMs`: a re-read skips them. */
  seen: Map<string, number>;
  /**
   * How many recent ids this process saved last (undefined: it has not saved this org's cursor yet): with
   * `savedThroughMs`, an unchanged cursor is not written again.
   */
  savedRecent: number | undefined;
  /** The saved cursor's throughMs, and whether it had no recent ids and no held lines (nothing to re-send). */
  savedThroughMs: number;
  savedIdle: boolean;
  /** An event of this org was read since its cursor was saved. */
  touched: boolean;
};

/**
 * Reads the audit trail of every org with Loki, in the one process holding the exporter's lock, and queues
 * each event once (see docs/integrations.md, "Logs (Loki)", for the guarantee).
 */
export function createAuditReader(deps: {
  source: LokiAuditSource;
  queues: ReadonlyMap<string, OrgQueue>;
  /** Changes whenever an org's queue is added to `queues` or removed from it. */
  queuesVersion(): number;
  clock: Clock;
  settings: AuditReaderSettings;
  /** An org's queue got lines. */
  queued(queue: OrgQueue): void;
}) {
  const { source, queues, clock, settings } = deps;
  const orgs = new Map<string, OrgReadState>();
  let leading = false;
  /** The last id of a full page: the next read continues after it. */
  let pagingFrom: string | undefined;
  /** The queuesVersion `orgs` matches: 10,000 orgs are compared with the queues only when it changed. */
  let matchedVersion: number | undefined;

  function reset(): void {
    leading = false;
    orgs.clear();
    pagingFrom = undefined;
    matchedVersion = undefined;
  }

  function initialState(queue: OrgQueue, cursor: AuditCursor | undefined, now: number): OrgReadState {
    const start = Math.max(
      queue.target.createdAt.getTime() - settings.startMarginMs,
      now - settings.catchUpMs,
    );
    const afterMs = cursor === undefined ? start : Math.max(cursor.throughMs - settings.overlapMs, start);
    const seen = new Map<string, number>();
    for (const id of cursor?.recentIds ?? []) {
      const ms = auditIdMs(id);
      if (ms >= afterMs) {
        seen.set(id, ms);
      }
    }
    const throughMs = Math.max(cursor?.throughMs ?? start, afterMs);
    return {
      afterMs,
      throughMs,
      seen,
      savedRecent: undefined,
      // A loaded cursor without recent ids counts as an idle save; an org without one is saved at once.
      savedThroughMs: cursor?.throughMs ?? Number.NEGATIVE_INFINITY,
      savedIdle: cursor !== undefined && cursor.recentIds.length === 0,
      touched: false,
    };
  }

  async function read(): Promise<void> {
    if (!(await source.lead())) {
      // Another process reads the trail; if this one did, it starts again from the saved cursors when it leads.
      reset();
      return;
    }
    leading = true;
    const now = clock.now().getTime();
    const version = deps.queuesVersion();
    const fresh: string[] = [];
    if (version !== matchedVersion) {
      for (const orgId of orgs.keys()) {
        if (!queues.has(orgId)) {
          orgs.delete(orgId);
        }
      }
      for (const orgId of queues.keys()) {
        if (!orgs.has(orgId)) {
          fresh.push(orgId);
        }
      }
    }
    if (fresh.length > 0) {
      const cursors = await source.loadCursors(fresh);
      for (const orgId of fresh) {
        const queue = queues.get(orgId);
        if (queue !== undefined) {
          orgs.set(orgId, initialState(queue, cursors.get(orgId), now));
        }
      }
      // A new org's stretch may begin before where reading had got to.
      pagingFrom = undefined;
    }
    // Only once the cursors are loaded: a failed load is tried again at the next poll.
    matchedVersion = version;
    const upperMs = now - settings.lagMs;
    let minAfter = Number.POSITIVE_INFINITY;
    for (const state of orgs.values()) {
      minAfter = Math.min(minAfter, state.afterMs);
    }
    if (!(minAfter < upperMs)) {
      return;
    }
    const rows = await source.read({
      orgIds: orgs.size <= settings.namedOrgsMax ? [...orgs.keys()] : undefined,
      afterId: pagingFrom ?? auditIdFloor(minAfter),
      beforeId: auditIdFloor(upperMs),
      limit: settings.pageSize,
    });
    for (const row of rows) {
      const state = orgs.get(row.orgId);
      const queue = queues.get(row.orgId);
      const idMs = auditIdMs(row.id);
      if (state === undefined || queue === undefined || !(idMs >= state.afterMs) || state.seen.has(row.id)) {
        continue;
      }
      state.seen.set(row.id, idMs);
      state.touched = true;
      queue.append({ id: row.id, idMs, ms: row.createdAt.getTime(), text: auditLine(row) }, now);
      deps.queued(queue);
    }
    const last = rows.at(-1);
    if (rows.length >= settings.pageSize && last !== undefined) {
      pagingFrom = last.id;
      return;
    }
    pagingFrom = undefined;
    const nextAfter = upperMs - settings.overlapMs;
    for (const state of orgs.values()) {
      state.throughMs = Math.max(state.throughMs, upperMs);
      if (nextAfter > state.afterMs) {
        state.afterMs = nextAfter;
        if (state.seen.size === 0) {
          continue;
        }
        for (const [id, ms] of state.seen) {
          if (ms < nextAfter) {
            state.seen.delete(id);
          }
        }
      }
    }
  }

  return {
    /** One read: events minted since the last one (and late commits of the overlap), queued per org. */
    async poll(): Promise<void> {
      try {
        await read();
      } catch (err) {
        // The lock's connection may be gone (and the lock with it): start again from the saved cursors.
        reset();
        throw err;
      }
    },

    /**
     * Save every org's cursor: where its undelivered audit lines begin, else how far reading got; and the ids
     * already sent from the stretch a restart reads again. Only the leading process saves. An idle org's cursor
     * (see `idleSaveMs`) is written only once it is that far behind, or when `all` (at stop).
     */
    async save(all = false): Promise<void> {
      if (!leading) {
        return;
      }
      const cursors: Array<{ orgId: string } & AuditCursor> = [];
      const saves: Array<{ state: OrgReadState; recentCount: number; throughMs: number; idle: boolean }> = [];
      for (const [orgId, state] of orgs) {
        const queue = queues.get(orgId);
        if (queue === undefined) {
          continue;
        }
        const held = queue.undeliveredAudit();
        const throughMs = Math.min(state.throughMs, held?.earliestIdMs ?? Number.POSITIVE_INFINITY);
        const floor = throughMs - settings.overlapMs;
        // Nothing is allocated for an org with no recent ids (most of 10,000, every save).
        let recent: Array<[string, number]> | undefined;
        for (const [id, ms] of state.seen) {
          if (ms >= floor && held?.ids.has(id) !== true) {
            recent ??= [];
            recent.push([id, ms]);
          }
        }
        if (recent !== undefined && recent.length > MAX_RECENT_IDS) {
          recent = recent.sort((a, b) => a[1] - b[1]).slice(-MAX_RECENT_IDS);
        }
        const recentCount = recent?.length ?? 0;
        if (state.savedRecent === recentCount && state.savedThroughMs === throughMs) {
          continue;
        }
        const idle = !state.touched && recentCount === 0 && held === undefined;
        if (idle && state.savedIdle && !all && throughMs - state.savedThroughMs < settings.idleSaveMs) {
          continue;
        }
        cursors.push({ orgId, throughMs, recentIds: recent === undefined ? [] : recent.map(([id]) => id) });
        saves.push({ state, recentCount, throughMs, idle });
        // Events read from here on mark the org again; those read before are in this save.
        state.touched = false;
      }
      if (cursors.length === 0) {
        return;
      }
      try {
        await source.saveCursors(cursors);
      } catch (err) {
        // Not saved: these orgs are written at the next save.
        for (const { state } of saves) {
          state.touched = true;
        }
        throw err;
      }
      for (const { state, recentCount, throughMs, idle } of saves) {
        state.savedRecent = recentCount;
        state.savedThroughMs = throughMs;
        state.savedIdle = idle;
      }
    },

    leading: () => leading,
  };
}

export type AuditReader = ReturnType<typeof createAuditReader>;
