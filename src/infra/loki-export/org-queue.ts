import { type AuditLine, pushBody, streamJson, streamValue } from "./loki-push.ts";
import type { LokiTarget } from "./types.ts";

/** A value's framing in the body beyond its line: the timestamp (19 digits), quotes, brackets, commas. */
const VALUE_OVERHEAD = 32;
/** Room kept in a batch for the body's envelope and the two streams' labels. */
const ENVELOPE_BYTES = 1024;
/** The first buffer of an org's authorize values; it doubles as needed and is let go once the org is quiet. */
const MIN_BYTES = 4096;
const COMMA = Buffer.from(",");
const EMPTY = Buffer.alloc(0);
/**
 * Where the authorize values go in a body built by pushBody and streamJson: a raw NUL, which JSON text never
 * holds (JSON.stringify escapes it), so it marks that one place only.
 */
const VALUES_MARK = "\u0000";

/** An audit line's size for the size trigger (characters, not bytes: the batch itself is cut on exact sizes). */
function estimate(line: AuditLine): number {
  return line.text.length + VALUE_OVERHEAD;
}

/**
 * Bytes in arrival order, outside the JS heap: appended at the end, taken from the front, put back in front.
 * Authorize values wait here up to a second; as strings they outlived young-generation collections by the
 * thousand per second and were copied twice, then promoted, by the garbage collector.
 */
class ByteFifo {
  private buf: Buffer = EMPTY;
  private start = 0;
  private end = 0;

  size(): number {
    return this.end - this.start;
  }

  /** Appends `text` as UTF-8; the bytes written. */
  push(text: string): number {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    this.reserve(text.length * 3);
    const written = this.buf.write(text, this.end, "utf8");
    this.end += written;
    return written;
  }

  /** The first `n` bytes, still in place: a view, valid until the next change. */
  peek(n: number): Buffer {
    return this.buf.subarray(this.start, this.start + n);
  }

  drop(n: number): void {
    this.start += n;
    if (this.start >= this.end) {
      // Empty: the next bytes go at the front of the same buffer. A busy org's buffer is taken empty every
      // batch and filled again at once: let go here, it was allocated again from 4 KB and doubled back up
      // to its size on every batch.
      this.start = 0;
      this.end = 0;
    }
  }

  /** Lets the buffer go when nothing waits in it, so 10,000 quiet orgs hold none. */
  release(): void {
    if (this.end === this.start && this.buf.length > 0) {
      this.buf = EMPTY;
      this.start = 0;
      this.end = 0;
    }
  }

  /** `front` then `tail` go back before what is here (a failed batch; rare, so one copy of everything). */
  unshift(front: Buffer, tail: Buffer): void {
    const rest = this.buf.subarray(this.start, this.end);
    const size = front.length + tail.length + rest.length;
    const next = Buffer.allocUnsafeSlow(Math.max(MIN_BYTES, size * 2));
    front.copy(next, 0);
    tail.copy(next, front.length);
    rest.copy(next, front.length + tail.length);
    this.buf = next;
    this.start = 0;
    this.end = size;
  }

  private reserve(need: number): void {
    if (this.end + need <= this.buf.length) {
      return;
    }
    const used = this.end - this.start;
    if (used + need <= this.buf.length / 2) {
      this.buf.copyWithin(0, this.start, this.end);
    } else {
      const next = Buffer.allocUnsafeSlow(Math.max(MIN_BYTES, (used + need) * 2));
      this.buf.copy(next, 0, this.start, this.end);
      this.buf = next;
    }
    this.start = 0;
    this.end = used;
  }
}

/**
 * A push on its way: its body, how many lines it carries, and what a failure puts back in front (the lines
 * in their arrival order; the authorize values are `body[authorizeAt, authorizeAt + authorizeBytes)`).
 */
export type Batch = {
  body: Buffer;
  lines: number;
  /** Audit lines and, as numbers, the byte length of each authorize value (with its trailing comma). */
  entries: Array<AuditLine | number>;
  authorizeAt: number;
  authorizeBytes: number;
};

/**
 * One org's lines on their way to its Loki: the waiting lines (at most `capacity`; when full, the oldest go and
 * are counted) and the batch in flight (at most one per org, so the org's pushes arrive in order). A failed
 * batch goes back in front of the waiting lines, where the bound applies to it too.
 *
 * Audit lines wait as objects (a few per minute). Authorize decisions, up to thousands a second, wait as the
 * bytes of their serialised stream value in a ByteFifo; the line list holds only each one's byte length.
 * Their timestamps never go back within the org's stream (a wall clock stepped back would otherwise make Loki
 * refuse the batch as out of order), so they stay in arrival order and are sent as they are.
 */
export class OrgQueue {
  target: LokiTarget;
  /**
   * Waiting lines in arrival order: an audit line, or an authorize value's byte length. Sent or dropped slots
   * before `head` are cleared (undefined) until the array is compacted.
   */
  private lines: Array<AuditLine | number | undefined> = [];
  private head = 0;
  private readonly values = new ByteFifo();
  private estimatedBytes = 0;
  /** The last authorize timestamp appended: the next is never earlier. */
  private lastAuthorizeMs = Number.NEGATIVE_INFINITY;
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

  /** O(1) amortised. */
  append(line: AuditLine, now: number): void {
    this.arrive(now);
    this.lines.push(line);
    this.estimatedBytes += estimate(line);
    this.bound();
  }

  /** An authorize decision's line, serialised now. O(1) amortised: the telemetry sink calls this on the request path. */
  appendAuthorize(ms: number, text: string, now: number): void {
    this.arrive(now);
    const at = Math.max(ms, this.lastAuthorizeMs);
    this.lastAuthorizeMs = at;
    const size = this.values.push(`${streamValue(at, text)},`);
    this.lines.push(size);
    this.estimatedBytes += size;
    this.bound();
  }

  private arrive(now: number): void {
    if (this.waiting() === 0) {
      this.firstAt = now;
    }
  }

  private bound(): void {
    if (this.waiting() > this.capacity) {
      this.dropOldest(this.waiting() - this.capacity);
    }
  }

  private dropOldest(count: number): void {
    for (let i = 0; i < count; i++) {
      const line = this.lines[this.head];
      if (typeof line === "number") {
        this.values.drop(line);
        this.estimatedBytes -= line;
      } else if (line !== undefined) {
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
    const entries: Array<AuditLine | number> = [];
    let size = ENVELOPE_BYTES;
    const audit: Array<{ line: AuditLine; value: string }> = [];
    let authorizeBytes = 0;
    while (this.head < this.lines.length) {
      const line = this.lines[this.head];
      if (line === undefined) {
        this.head += 1;
        continue;
      }
      let valueBytes: number;
      let value: string | undefined;
      if (typeof line === "number") {
        valueBytes = line;
      } else {
        value = streamValue(line.ms, line.text);
        valueBytes = Buffer.byteLength(value, "utf8") + 1;
      }
      if (entries.length > 0 && size + valueBytes > maxBytes) {
        break;
      }
      size += valueBytes;
      entries.push(line);
      if (typeof line === "number") {
        authorizeBytes += line;
        this.estimatedBytes -= line;
      } else {
        audit.push({ line, value: value ?? "" });
        this.estimatedBytes -= estimate(line);
      }
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
    const streams: string[] = [];
    if (audit.length > 0) {
      audit.sort((a, b) => a.line.ms - b.line.ms);
      streams.push(
        streamJson(
          { org_id: this.target.orgId, source: "audit" },
          audit.map((a) => a.value),
        ),
      );
    }
    let body: Buffer;
    let authorizeAt = 0;
    if (authorizeBytes === 0) {
      body = Buffer.from(pushBody(streams), "utf8");
    } else {
      // The authorize stream's values are the fifo's first bytes, as they are, less the last one's comma, in
      // the place VALUES_MARK holds in the envelope pushBody and streamJson write.
      const labels = { org_id: this.target.orgId, source: "authorize", instance: this.instance };
      const [before = "", after = ""] = pushBody([...streams, streamJson(labels, [VALUES_MARK])]).split(
        VALUES_MARK,
      );
      const head = Buffer.from(before, "utf8");
      body = Buffer.concat([head, this.values.peek(authorizeBytes - 1), Buffer.from(after, "utf8")]);
      authorizeAt = head.length;
      this.values.drop(authorizeBytes);
    }
    const batch: Batch = { body, lines: entries.length, entries, authorizeAt, authorizeBytes };
    this.inFlight = batch;
    return batch;
  }

  succeeded(): void {
    this.inFlight = undefined;
    this.failures = 0;
    this.retryAt = 0;
    this.outcome = { ok: true, error: null };
    this.idle();
  }

  /** Nothing came while a batch was on its way: the org is quiet, its buffer goes until its next line. */
  private idle(): void {
    if (this.waiting() === 0) {
      this.values.release();
    }
  }

  /** Loki refused the batch's content: it is given up and counted. */
  rejected(error: string): void {
    const batch = this.inFlight;
    this.inFlight = undefined;
    if (batch !== undefined) {
      this.droppedBatches += 1;
      this.droppedLines += batch.lines;
    }
    // The endpoint answers: later batches go out at the normal pace.
    this.failures = 0;
    this.retryAt = 0;
    this.outcome = { ok: false, error };
    this.idle();
  }

  /** The push failed (unreachable, timed out, 5xx, 429, 401…): the batch waits in front for the retry. */
  failed(error: string, retryAt: number): void {
    const batch = this.inFlight;
    this.inFlight = undefined;
    if (batch !== undefined) {
      const rest = this.lines.slice(this.head);
      this.lines = [...batch.entries, ...rest];
      this.head = 0;
      if (batch.authorizeBytes > 0) {
        // The values as they were taken: the body holds them less the last comma.
        this.values.unshift(
          batch.body.subarray(batch.authorizeAt, batch.authorizeAt + batch.authorizeBytes - 1),
          COMMA,
        );
      }
      for (const line of batch.entries) {
        this.estimatedBytes += typeof line === "number" ? line : estimate(line);
      }
      this.bound();
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
    // Allocates nothing for an org without audit lines: the cursor save asks this of 10,000 orgs every 30 s.
    let earliest = Number.POSITIVE_INFINITY;
    let ids: Set<string> | undefined;
    const inFlight = this.inFlight?.entries;
    if (inFlight !== undefined) {
      for (const line of inFlight) {
        if (typeof line !== "number") {
          earliest = Math.min(earliest, line.idMs);
          ids ??= new Set();
          ids.add(line.id);
        }
      }
    }
    for (let i = this.head; i < this.lines.length; i++) {
      const line = this.lines[i];
      if (line !== undefined && typeof line !== "number") {
        earliest = Math.min(earliest, line.idMs);
        ids ??= new Set();
        ids.add(line.id);
      }
    }
    return ids === undefined ? undefined : { earliestIdMs: earliest, ids };
  }
}
