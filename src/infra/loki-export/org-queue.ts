import { type PendingLine, pushBody, streamJson, streamValue } from "./loki-push.ts";
import type { LokiTarget } from "./types.ts";

/** A value's framing in the body beyond its line: the timestamp (19 digits), quotes, brackets, commas. */
const VALUE_OVERHEAD = 32;
/** Room kept in a batch for the body's envelope and the two streams' labels. */
const ENVELOPE_BYTES = 1024;

/** A line's size for the size trigger (characters, not bytes: the batch itself is cut on exact sizes). */
function estimate(line: PendingLine): number {
  return line.text.length + VALUE_OVERHEAD;
}

function byMs(a: PendingLine, b: PendingLine): number {
  return a.ms - b.ms;
}

export type Batch = { lines: PendingLine[]; body: string };

/**
 * One org's lines on their way to its Loki: the waiting lines (at most `capacity`; when full, the oldest go and
 * are counted) and the batch in flight (at most one per org, so the org's pushes arrive in order). A failed
 * batch goes back in front of the waiting lines, where the bound applies to it too.
 */
export class OrgQueue {
  target: LokiTarget;
  /** Sent or dropped slots before `head` are cleared (undefined) until the array is compacted. */
  private lines: Array<PendingLine | undefined> = [];
  private head = 0;
  private estimatedBytes = 0;
  /** When the oldest waiting line arrived (clock ms); a batch is due `flushDelayMs` after. */
  firstAt = 0;
  inFlight: Batch | undefined;
  /** Failed pushes in a row: the backoff's exponent, and whether the org draws on the retry budget. */
  failures = 0;
  retryAt = 0;
  /** Since the last report to the integrations service. */
  outcome: { ok: boolean; error: string | null } | undefined;
  droppedLines = 0;
  droppedBatches = 0;
  /** The integration was removed: whatever is in flight is not reported. */
  removed = false;

  private readonly capacity: number;
  /** The `instance` label of the authorize stream: this process. */
  private readonly instance: string;

  constructor(target: LokiTarget, capacity: number, instance: string) {
    this.target = target;
    this.capacity = capacity;
    this.instance = instance;
  }

  waiting(): number {
    return this.lines.length - this.head;
  }

  bytes(): number {
    return this.estimatedBytes;
  }

  /** O(1) amortised: the telemetry sink calls this on the request path. */
  append(line: PendingLine, now: number): void {
    if (this.waiting() === 0) {
      this.firstAt = now;
    }
    this.lines.push(line);
    this.estimatedBytes += estimate(line);
    if (this.waiting() > this.capacity) {
      this.dropOldest(this.waiting() - this.capacity);
    }
  }

  private dropOldest(count: number): void {
    for (let i = 0; i < count; i++) {
      const line = this.lines[this.head];
      if (line !== undefined) {
        this.estimatedBytes -= estimate(line);
      }
      this.lines[this.head] = undefined;
      this.head += 1;
    }
    this.droppedLines += count;
    this.compact();
  }

  /** Dropped slots are cut off once they are most of the array, so appends and drops stay O(1) amortised. */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }

  /**
   * The oldest waiting lines, up to `maxBytes` of body (one line alone may exceed it: it goes by itself),
   * grouped into the audit and authorize streams, each in timestamp order as Loki requires.
   */
  take(maxBytes: number): Batch {
    const taken: PendingLine[] = [];
    let size = ENVELOPE_BYTES;
    const audit: string[] = [];
    const authorize: string[] = [];
    const values: Array<{ line: PendingLine; value: string }> = [];
    while (this.head < this.lines.length) {
      const line = this.lines[this.head];
      if (line === undefined) {
        this.head += 1;
        continue;
      }
      const value = streamValue(line.ms, line.text);
      const valueBytes = Buffer.byteLength(value, "utf8") + 1;
      if (taken.length > 0 && size + valueBytes > maxBytes) {
        break;
      }
      size += valueBytes;
      taken.push(line);
      values.push({ line, value });
      this.estimatedBytes -= estimate(line);
      this.lines[this.head] = undefined;
      this.head += 1;
    }
    if (this.waiting() === 0) {
      this.lines = [];
      this.head = 0;
      this.estimatedBytes = 0;
    } else {
      this.compact();
      // Lines left behind a full batch are due as soon as it is through.
      this.firstAt = Number.NEGATIVE_INFINITY;
    }
    values.sort((a, b) => byMs(a.line, b.line));
    for (const { line, value } of values) {
      (line.source === "audit" ? audit : authorize).push(value);
    }
    const streams: string[] = [];
    if (audit.length > 0) {
      streams.push(streamJson({ org_id: this.target.orgId, source: "audit" }, audit));
    }
    if (authorize.length > 0) {
      streams.push(
        streamJson({ org_id: this.target.orgId, source: "authorize", instance: this.instance }, authorize),
      );
    }
    const batch = { lines: taken, body: pushBody(streams) };
    this.inFlight = batch;
    return batch;
  }

  succeeded(): void {
    this.inFlight = undefined;
    this.failures = 0;
    this.retryAt = 0;
    this.outcome = { ok: true, error: null };
  }

  /** Loki refused the batch's content: it is given up and counted. */
  rejected(error: string): void {
    const batch = this.inFlight;
    this.inFlight = undefined;
    if (batch !== undefined) {
      this.droppedBatches += 1;
      this.droppedLines += batch.lines.length;
    }
    // The endpoint answers: later batches go out at the normal pace.
    this.failures = 0;
    this.retryAt = 0;
    this.outcome = { ok: false, error };
  }

  /** The push failed (unreachable, timed out, 5xx, 429, 401…): the batch waits in front for the retry. */
  failed(error: string, retryAt: number): void {
    const batch = this.inFlight;
    this.inFlight = undefined;
    if (batch !== undefined) {
      const rest = this.lines.slice(this.head);
      this.lines = [...batch.lines, ...rest];
      this.head = 0;
      for (const line of batch.lines) {
        this.estimatedBytes += estimate(line);
      }
      if (this.waiting() > this.capacity) {
        this.dropOldest(this.waiting() - this.capacity);
      }
    }
    this.failures += 1;
    this.retryAt = retryAt;
    this.outcome = { ok: false, error };
  }

  /**
   * The audit lines not yet delivered: the earliest id time among them (where the org's cursor must stay) and
   * their ids (not "recently sent": a restart must send them).
   */
  undeliveredAudit(): { earliestIdMs: number; ids: Set<string> } | undefined {
    let earliest = Number.POSITIVE_INFINITY;
    const ids = new Set<string>();
    const visit = (line: PendingLine | undefined) => {
      if (line?.source === "audit") {
        earliest = Math.min(earliest, line.idMs);
        ids.add(line.id);
      }
    };
    for (const line of this.inFlight?.lines ?? []) {
      visit(line);
    }
    for (let i = this.head; i < this.lines.length; i++) {
      visit(this.lines[i]);
    }
    return ids.size === 0 ? undefined : { earliestIdMs: earliest, ids };
  }
}
