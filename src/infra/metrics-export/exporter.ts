import { createHash } from "node:crypto";
import { setImmediate as nextTurn } from "node:timers/promises";
import type { IntegrationsService } from "../../domain/integrations/integrations.service.ts";
import {
  type IntegrationConfig,
  type IntegrationProbe,
  type IntegrationResult,
  type ProbeResult,
  redactCredentials,
} from "../../domain/integrations/integrations.types.ts";
import type { Telemetry } from "../../domain/observability/telemetry.ts";
import type { Clock } from "../../lib/clock.ts";
import type { ExportLease, OrgFigures } from "../../store/metrics-export.store.pg.ts";
import { createBoundedWarning, type Logger } from "../logger.ts";
import type { OutboundClient } from "../outbound-http.ts";
import { type MetricSample, type OrgMetrics, toTimeSeries } from "./org-metrics.ts";
import { REMOTE_WRITE_HEADERS, remoteWriteBody } from "./remote-write.ts";

/*
 * The Prometheus remote-write exporter (docs/integrations.md, "Metrics (Prometheus)"): every interval, each
 * organization with a Prometheus integration gets one push of its series. Pushes are spread over the
 * interval (each organization at its own fixed offset), run a bounded number at a time over the outbound
 * client's keep-alive sockets, and each is bounded by a timeout. An endpoint that keeps failing is tried
 * less and less often, with its own small share of the concurrency, so dead endpoints never hold back
 * the others; a push that failed or was skipped is counted as a dropped batch (counters are cumulative, so
 * the next push that succeeds carries the totals).
 */

/** The part of the integrations service the exporter uses: who exports where, and how it went. */
export type PrometheusIntegrations = Pick<IntegrationsService, "active" | "recordResults">;

export type MetricsExporterOptions = {
  /** The per-organization registry (services.orgMetrics): its counters and database figures are pushed. */
  metrics: OrgMetrics;
  /** Which organizations export, and where their results are recorded (services.integrations). */
  integrations: PrometheusIntegrations;
  /**
   * createThreadedOutboundClient({ allowPrivate: INTEGRATIONS_ALLOW_PRIVATE }) (or the plain client); not closed
   * by the exporter. Held for each burst of pushes (`hold`), which then go to its thread together.
   */
  client: Pick<OutboundClient, "post" | "hold">;
  /** The advisory lock deciding which process pushes database figures (createExportLease). */
  lease: ExportLease;
  clock: Clock;
  logger: Logger;
  /** METRICS_PUSH_INTERVAL_SECONDS: one push per organization this often. */
  intervalSeconds: number;
  /** How often database figures are read again; at least the interval. Default 60 s. */
  figuresRefreshSeconds?: number;
  /** Pushes in flight at once to endpoints that answered last time. Default 64. */
  maxConcurrentPushes?: number;
  /** Pushes in flight at once to endpoints that are failing. Default 4. */
  maxConcurrentFailingPushes?: number;
  /** A push still unanswered after this long fails. Default 10 s (at most 80 % of the interval). */
  pushTimeoutMs?: number;
  /** The User-Agent header of pushes. */
  userAgent?: string;
  /**
   * An organization whose series are all unchanged since its last successful push is pushed again once in this
   * long (default 60 s, rounded to whole intervals, at least one): Prometheus shows a series' last sample for
   * 5 minutes, so an idle organization's graphs keep their values while 10,000 idle organizations cost a
   * quarter of the pushes. Which interval of that period is an organization's is its own (see `placeOf`).
   */
  resendUnchangedSeconds?: number;
};

export type MetricsExporter = {
  /** The sink for services.telemetry (the registry's). */
  telemetry: Telemetry;
  /** POST …/integrations/test: one `orgplane_integration_test{org_id} 1` sample to `config`, now. */
  probe: IntegrationProbe;
  /** The organization's series in the text format (GET …/metrics). */
  render(orgId: string): Promise<string>;
  /**
   * One whole interval now, without spreading: read the integrations (and the figures, when this process
   * holds the lease), push to every organization, record the results. What tests call instead of waiting.
   */
  exportOnce(): Promise<IntegrationResult[]>;
  /** Push every interval until stopped. */
  start(): Promise<void>;
  /** Stop scheduling; wait for the interval in progress; release the lease. */
  stop(): Promise<void>;
};

const DEFAULT_FIGURES_REFRESH_SECONDS = 60;
/** Room for a whole burst (PACE_MS) of 10,000 organizations' steady pushes, about 45, with room to spare. */
const DEFAULT_MAX_CONCURRENT = 64;
const DEFAULT_MAX_CONCURRENT_FAILING = 4;
const DEFAULT_PUSH_TIMEOUT_MS = 10_000;
/** Pushes start within this share of the interval, so the last ones finish before the next interval. */
const SPREAD_SHARE = 0.8;
/**
 * Pushes go in bursts: the walk sleeps until the next push is due, then starts it and every push due within this
 * long after it, and hands them to the client's thread as one message. Each message wakes that thread, its
 * writes wake the receivers and their answers wake it again; on two vCPUs each woken thread may take the CPU
 * of the thread that answers the API (at 20 ms, about 50 bursts a second, the API's thread was preempted
 * several times as often as without export). A push starts at most this much before its offset.
 */
const PACE_MS = 250;
/** Work of one interval done in one go before the requests waiting meanwhile are let through. */
const SLICE_MS = 0.25;
/**
 * Organizations whose figures are read in one go in a spread interval, as its walk reaches them: a few small
 * statements at a time rather than all organizations' at once (for 10,000, that was half a second of the
 * database's CPU in one burst, once a minute, which the API's requests felt as a stall).
 */
const FIGURES_BATCH = 200;
/** In a spread interval, the outcomes of the pushes so far are recorded this often, not all at its end. */
const RECORD_EVERY_MS = 1000;
/** A failing endpoint is skipped for 1, 2, 4, … intervals after each failure, up to this many. */
const MAX_BACKOFF_INTERVALS = 16;
const DEFAULT_RESEND_UNCHANGED_SECONDS = 60;
/** The error of a push that found no free slot before its interval ended. */
const SKIPPED = "skipped: too many pushes were still in flight when the interval ended";
/** What is kept of an endpoint's error for the integration's status. */
const ERROR_MAX_CHARS = 300;

/** A slot-limited section: at most `size` callers inside at once, the rest waiting in order. */
function semaphore(size: number) {
  let inside = 0;
  const waiting: ((entered: boolean) => void)[] = [];
  return {
    /** True when a slot was free, and taken. */
    tryAcquire(): boolean {
      if (inside < size) {
        inside++;
        return true;
      }
      return false;
    },
    /** True once inside; false when no slot freed up within `waitMs` (0: do not wait). */
    async acquire(waitMs: number): Promise<boolean> {
      if (this.tryAcquire()) {
        return true;
      }
      if (waitMs <= 0) {
        return false;
      }
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          const i = waiting.indexOf(enter);
          if (i >= 0) {
            waiting.splice(i, 1);
          }
          resolve(false);
        }, waitMs);
        function enter(entered: boolean): void {
          clearTimeout(timer);
          resolve(entered);
        }
        waiting.push(enter);
      });
    },
    release(): void {
      const next = waiting.shift();
      if (next !== undefined) {
        // The slot passes straight to the next caller: `inside` stays the same.
        next(true);
      } else {
        inside--;
      }
    },
  };
}

/*
 * A push's fingerprint: a 53-bit hash of what it carries but its timestamps (families, label values and
 * values, in order). Two lanes of a multiply-rotate hash, kept in module scope so that hashing allocates
 * nothing. It used to be the text itself: every push kept a string of a kilobyte or more (built by
 * concatenation, so a tree of pieces) for a minute, which all ended up in the old generation. Two pushes
 * whose contents differ share a fingerprint with a chance of about 2^-53; the cost of that would be one
 * changed push held back until the unchanged resend (resendUnchangedSeconds).
 */
let lane1 = 0;
let lane2 = 0;
const valueBits = new Float64Array(1);
const valueWords = new Uint32Array(valueBits.buffer);

function mix(word: number): void {
  lane1 = Math.imul(((lane1 << 5) | (lane1 >>> 27)) ^ word, 0x9e3779b1);
  lane2 = Math.imul(((lane2 << 7) | (lane2 >>> 25)) ^ word, 0x85ebca77);
}

function mixText(text: string): void {
  for (let i = 0; i < text.length; i++) {
    mix(text.charCodeAt(i));
  }
  // A separator no UTF-16 code unit equals: "ab" + "c" and "a" + "bc" differ.
  mix(0x10000);
}

/** Equal for two pushes whose series and values are the same (see above). */
export function fingerprintOf(samples: readonly MetricSample[]): number {
  lane1 = 0x811c9dc5;
  lane2 = samples.length;
  for (const s of samples) {
    mixText(s.family.name);
    for (const l of s.labels) {
      mixText(l.value);
    }
    valueBits[0] = s.value;
    mix(valueWords[0] ?? 0);
    mix(valueWords[1] ?? 0);
  }
  // Each lane's high bits into its low ones, and each lane into the other, before 53 bits are taken.
  const a = Math.imul(lane1 ^ (lane1 >>> 16), 0x85ebca6b) ^ lane2;
  const b = Math.imul(lane2 ^ (lane2 >>> 13), 0xc2b2ae35) ^ a;
  return (Math.imul(a ^ (a >>> 15), 0x27d4eb2f) >>> 0) * 0x200000 + ((b ^ (b >>> 16)) >>> 11);
}

/**
 * Where an organization's pushes fall, fixed per organization: `share`, a fraction in [0, 1), its place within
 * every interval; `resendSlot`, which interval of each resend period takes its unchanged resend; `figuresSlot`,
 * which interval of each figures period reads its database figures again. The slots come from other bits of
 * the hash than the share, so the organizations resent (or read) in any one interval are spread over the
 * whole of it; and from the same bits as each other, so with the default periods (a minute each) an
 * organization's figures are read again just before its resend carries them. (When the resend followed from
 * the time of the last push, the organizations resent together were those of neighbouring places: a quarter
 * of 10,000 pushes fell within a quarter of every interval.)
 */
export function placeOf(orgId: string, resendEvery: number, figuresEvery = 1): Place {
  const digest = createHash("sha1").update(orgId).digest();
  const slotBits = digest.readUInt32BE(4);
  return {
    share: digest.readUInt32BE(0) / 2 ** 32,
    resendSlot: slotBits % resendEvery,
    figuresSlot: slotBits % figuresEvery,
  };
}

type Place = { share: number; resendSlot: number; figuresSlot: number };

/** The token and the Authorization value never appear in an error, whatever an endpoint echoes back. */
function redact(text: string, target: IntegrationConfig): string {
  const out = redactCredentials(text, target);
  return out.length > ERROR_MAX_CHARS ? `${out.slice(0, ERROR_MAX_CHARS)}…` : out;
}

function basicAuth(target: IntegrationConfig): string {
  return `Basic ${Buffer.from(`${target.id}:${target.token}`, "utf8").toString("base64")}`;
}

/** Where a push went, for logs: the endpoint's origin only (its path or query may carry something private). */
function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return "(invalid URL)";
  }
}

/** What an organization's push was made of (see `lastSent`). */
type Sent = { fingerprint: number; changes: number; figures: OrgFigures | undefined };

export function createMetricsExporter(options: MetricsExporterOptions): MetricsExporter {
  const { metrics, integrations, client, lease, clock, logger } = options;
  const intervalMs = Math.max(1, options.intervalSeconds) * 1000;
  const refreshMs = Math.max(
    intervalMs,
    (options.figuresRefreshSeconds ?? DEFAULT_FIGURES_REFRESH_SECONDS) * 1000,
  );
  const timeoutMs = Math.max(
    100,
    Math.min(options.pushTimeoutMs ?? DEFAULT_PUSH_TIMEOUT_MS, Math.floor(intervalMs * SPREAD_SHARE)),
  );
  const healthySlots = semaphore(options.maxConcurrentPushes ?? DEFAULT_MAX_CONCURRENT);
  const failingSlots = semaphore(options.maxConcurrentFailingPushes ?? DEFAULT_MAX_CONCURRENT_FAILING);
  const userAgent = options.userAgent ?? "Orgplane-Metrics";
  const warn = createBoundedWarning(logger, "metrics push failed");

  /** Intervals in a figures period: an organization's figures are read again in one of every this many. */
  const figuresEvery = Math.max(1, Math.round(refreshMs / intervalMs));
  /** Intervals in a resend period: an unchanged organization is pushed in one of every this many. */
  const resendEvery = Math.max(
    1,
    Math.round(((options.resendUnchangedSeconds ?? DEFAULT_RESEND_UNCHANGED_SECONDS) * 1000) / intervalMs),
  );
  /** Intervals begun since the start: which one of its resend period an interval is. */
  let intervalCount = 0;
  /** Per organization: its placeOf, computed once (every interval orders 10,000 of them). */
  const places = new Map<string, Place>();
  function place(orgId: string): Place {
    let found = places.get(orgId);
    if (found === undefined) {
      found = placeOf(orgId, resendEvery, figuresEvery);
      places.set(orgId, found);
    }
    return found;
  }
  /**
   * Per organization: what its last successful push carried (values and labels), and what it was made of:
   * the registry's change count and the figures object (replaced on every read of the figures).
   */
  const lastSent = new Map<string, Sent>();
  /** Per organization whose last push failed: consecutive failures, intervals left to skip, the last error. */
  const failing = new Map<string, { failures: number; skip: number; error: string }>();
  /** The organizations in the order of their offsets in an interval, and the integrations they were made of. */
  let plan:
    | {
        targets: readonly IntegrationConfig[];
        /** Each with its place, held here: the walk of every interval looks it up for 10,000 organizations. */
        ordered: Array<{ t: IntegrationConfig; at: number; p: Place }>;
      }
    | undefined;
  /** Per organization: its figures as last read, while this process holds the lease. */
  let figures = new Map<string, OrgFigures>();
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  /** Resolves the sleep of the interval in progress early, at stop. */
  let wakeSleeper: (() => void) | undefined;

  async function push(target: IntegrationConfig, body: Buffer): Promise<ProbeResult> {
    const authorization = basicAuth(target);
    try {
      const answer = await client.post(target.endpoint, {
        headers: { ...REMOTE_WRITE_HEADERS, authorization, "user-agent": userAgent },
        body,
        timeoutMs,
      });
      const ok =
        answer.error === null && answer.status !== null && answer.status >= 200 && answer.status < 300;
      const error = ok
        ? null
        : redact(answer.error ?? `HTTP ${answer.status}: ${answer.bodyExcerpt}`, target);
      return { ok, status: answer.status, error, latencyMs: answer.latencyMs };
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { ok: false, status: null, error: redact(message, target), latencyMs: 0 };
    }
  }

  /** True when this process holds the lease (figures are its to push); drops the figures when another does. */
  async function holdsLease(): Promise<boolean> {
    try {
      if (await lease.acquire()) {
        return true;
      }
      figures = new Map();
    } catch (err) {
      // Pushes go on with the counters and the figures read last time; the next interval tries again.
      logger.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        "reading the metrics figures failed",
      );
    }
    return false;
  }

  /** Read these organizations' figures again (kept for the next pushes); on failure, the last ones stay. */
  async function readFigures(orgIds: readonly string[]): Promise<void> {
    try {
      for (const f of await metrics.readFigures(orgIds)) {
        figures.set(f.orgId, f);
      }
    } catch (err) {
      logger.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        "reading the metrics figures failed",
      );
    }
  }

  /**
   * One organization's push of this interval, or its skip while its endpoint is backing off; undefined when
   * there is nothing to send (no traffic in this process and the figures are another process's to push, or
   * nothing new). A result comes at once when nothing is pushed; a push is already on its way when a slot
   * was free.
   */
  function exportOrg(
    target: IntegrationConfig,
    orgPlace: Place,
    interval: number,
    deadline: number,
  ): IntegrationResult | undefined | Promise<IntegrationResult> {
    const state = failing.get(target.orgId);
    const base = { orgId: target.orgId, kind: "prometheus" as const, droppedLines: 0 };
    if (state !== undefined && state.skip > 0) {
      state.skip -= 1;
      return { ...base, ok: false, error: state.error, droppedBatches: 1 };
    }
    const orgFigures = figures.get(target.orgId);
    const changes = metrics.changes(target.orgId);
    const last = lastSent.get(target.orgId);
    const resendDue = last === undefined || (interval + orgPlace.resendSlot) % resendEvery === 0;
    if (state === undefined && !resendDue && last.changes === changes && last.figures === orgFigures) {
      // Neither a counter nor a figure moved since the last push, which Prometheus still shows: its samples
      // are not even built (most of 10,000 organizations, every interval).
      return undefined;
    }
    const samples = metrics.samples(target.orgId, orgFigures, false);
    if (samples.length === 0) {
      return undefined;
    }
    const fingerprint = fingerprintOf(samples);
    if (state === undefined && !resendDue && last.fingerprint === fingerprint) {
      // Nothing new since the last push, which Prometheus still shows: nothing to send this interval.
      last.changes = changes;
      last.figures = orgFigures;
      return undefined;
    }
    const sent: Sent = { fingerprint, changes, figures: orgFigures };
    // A failing endpoint gets a slot of its own share only if one is free; a healthy one waits for a slot
    // until the interval is over. Either way a push that did not start this interval is a dropped batch.
    const slots = state === undefined ? healthySlots : failingSlots;
    if (slots.tryAcquire()) {
      return pushOrg(target, samples, sent, state, slots);
    }
    const waitMs = state === undefined ? deadline - performance.now() : 0;
    return slots
      .acquire(waitMs)
      .then((entered) =>
        entered
          ? pushOrg(target, samples, sent, state, slots)
          : { ...base, ok: false, error: state?.error ?? SKIPPED, droppedBatches: 1 },
      );
  }

  /** One push, inside a slot of `slots` (released here), and what it means for the org's backoff. */
  async function pushOrg(
    target: IntegrationConfig,
    samples: MetricSample[],
    sent: Sent,
    state: { failures: number } | undefined,
    slots: ReturnType<typeof semaphore>,
  ): Promise<IntegrationResult> {
    const base = { orgId: target.orgId, kind: "prometheus" as const, droppedLines: 0 };
    let outcome: ProbeResult;
    try {
      outcome = await push(target, remoteWriteBody(toTimeSeries(samples, clock.now().getTime())));
    } finally {
      slots.release();
    }
    if (outcome.ok) {
      failing.delete(target.orgId);
      const last = lastSent.get(target.orgId);
      if (last === undefined) {
        lastSent.set(target.orgId, sent);
      } else {
        // Updated in place: an entry lives for minutes, a new one per push would be old-generation garbage.
        last.fingerprint = sent.fingerprint;
        last.changes = sent.changes;
        last.figures = sent.figures;
      }
      return { ...base, ok: true, error: null, droppedBatches: 0 };
    }
    const failures = (state?.failures ?? 0) + 1;
    const error = outcome.error ?? "failed";
    failing.set(target.orgId, {
      failures,
      skip: Math.min(MAX_BACKOFF_INTERVALS, 2 ** (failures - 1)) - 1,
      error,
    });
    warn({ org_id: target.orgId, endpoint: originOf(target.endpoint), error });
    return { ...base, ok: false, error, droppedBatches: 1 };
  }

  async function record(results: IntegrationResult[]): Promise<void> {
    if (results.length === 0) {
      return;
    }
    try {
      await integrations.recordResults(results);
    } catch (err) {
      logger.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        "recording the metrics push results failed",
      );
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      wakeSleeper = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** One interval: targets, figures, then each push at its offset (spread) or all at once. */
  async function runInterval(spread: boolean): Promise<IntegrationResult[]> {
    const interval = intervalCount;
    intervalCount += 1;
    metrics.rotate();
    let targets: readonly IntegrationConfig[];
    try {
      targets = await integrations.active("prometheus");
    } catch (err) {
      logger.warn(
        { err: { message: err instanceof Error ? err.message : String(err) } },
        "reading the Prometheus integrations failed",
      );
      return [];
    }
    // The integrations service answers the very same array while nothing changed: 10,000 organizations are
    // then neither compared with what is kept per organization nor sorted again.
    if (plan?.targets !== targets) {
      // What is kept per organization (backoff, last push, place) is forgotten once it no longer exports.
      const current = new Set(targets.map((t) => t.orgId));
      for (const perOrg of [failing, lastSent, places, figures]) {
        for (const orgId of perOrg.keys()) {
          if (!current.has(orgId)) {
            perOrg.delete(orgId);
          }
        }
      }
      plan = {
        targets,
        ordered: targets
          .map((t) => {
            const p = place(t.orgId);
            return { t, at: p.share * intervalMs * SPREAD_SHARE, p };
          })
          .sort((a, b) => a.at - b.at),
      };
    }
    const { ordered } = plan;
    // Spread: the figures of this interval's share of the organizations (and of any not read yet) are read in
    // batches as the walk below reaches them. Not spread (exportOnce): every organization's, now.
    const readingFigures = await holdsLease();
    if (readingFigures && !spread) {
      await readFigures(targets.map((t) => t.orgId));
    }
    // Every exporting organization exists, so a read answers for each one asked: one without figures was not
    // read yet, or its read failed.
    const figuresDue = (orgId: string, p: Place): boolean =>
      !figures.has(orgId) || (interval + p.figuresSlot) % figuresEvery === 0;
    const started = performance.now();
    const results: IntegrationResult[] = [];
    // Pushes are not kept until the interval's end (up to 15 s, long enough to reach the old generation): a
    // push's result is taken as it comes, a success as the org's id alone (a string the target already holds).
    const succeeded: string[] = [];
    let pending = 0;
    let allSettled: (() => void) | undefined;
    let pushFailure: { err: unknown } | undefined;
    const track = (push: Promise<IntegrationResult>): void => {
      pending += 1;
      push
        .then(
          (result) => {
            if (result.ok) {
              succeeded.push(result.orgId);
            } else {
              results.push(result);
            }
          },
          (err: unknown) => {
            pushFailure ??= { err };
          },
        )
        .finally(() => {
          pending -= 1;
          if (pending === 0) {
            allSettled?.();
          }
        });
    };
    /** The outcomes so far, recorded; spread intervals record every RECORD_EVERY_MS, in small statements. */
    const returned: IntegrationResult[] = [];
    const recordSoFar = async (): Promise<void> => {
      const batch = results.splice(0);
      for (const orgId of succeeded.splice(0)) {
        batch.push({ orgId, kind: "prometheus", ok: true, error: null, droppedBatches: 0, droppedLines: 0 });
      }
      if (!spread) {
        returned.push(...batch);
      }
      await record(batch);
    };
    const deadline = started + intervalMs;
    /** The client held for the burst in progress (spread intervals): released before each sleep and at the end. */
    let release: (() => void) | undefined;
    let sliceStart = performance.now();
    let recordedAt = sliceStart;
    /** The index in `ordered` up to which this interval's figures were read. */
    let figuresThrough = -1;
    try {
      for (let i = 0; i < ordered.length; i++) {
        const entry = ordered[i];
        if (entry === undefined) {
          break;
        }
        const { t, at, p } = entry;
        const now = performance.now();
        // Not spread (exportOnce): every push now.
        const wait = spread ? started + at - now : 0;
        if (wait > PACE_MS && !stopped) {
          release?.();
          release = undefined;
          await sleep(wait);
          sliceStart = performance.now();
        } else if (spread && now - sliceStart > SLICE_MS) {
          // Requests are answered between slices: a run of pushes due together never holds them up for long.
          await nextTurn();
          sliceStart = performance.now();
        }
        if (spread && stopped) {
          // Shutting down: the pushes not yet started are left to the next process's counters.
          break;
        }
        if (spread && readingFigures && i > figuresThrough && figuresDue(t.orgId, p)) {
          // This organization's figures and those of the next ones due, in one read.
          const batch: string[] = [];
          let j = i;
          for (; j < ordered.length && batch.length < FIGURES_BATCH; j++) {
            const next = ordered[j];
            if (next !== undefined && figuresDue(next.t.orgId, next.p)) {
              batch.push(next.t.orgId);
            }
          }
          figuresThrough = j - 1;
          await readFigures(batch);
          sliceStart = performance.now();
        }
        if (spread && sliceStart - recordedAt >= RECORD_EVERY_MS) {
          recordedAt = sliceStart;
          await recordSoFar();
          sliceStart = performance.now();
        }
        if (spread) {
          release ??= client.hold();
        }
        const result = exportOrg(t, p, interval, deadline);
        if (result instanceof Promise) {
          track(result);
        } else if (result !== undefined) {
          results.push(result);
        }
      }
    } finally {
      // The last burst's pushes go now: the wait below is for their answers.
      release?.();
    }
    if (pending > 0) {
      await new Promise<void>((resolve) => {
        allSettled = resolve;
      });
    }
    if (pushFailure !== undefined) {
      throw pushFailure.err;
    }
    await recordSoFar();
    return returned;
  }

  function schedule(): void {
    if (stopped) {
      return;
    }
    const startedAt = performance.now();
    running = runInterval(true)
      .catch((err: unknown) =>
        logger.warn(
          { err: { message: err instanceof Error ? err.message : String(err) } },
          "metrics export failed",
        ),
      )
      .finally(() => {
        if (!stopped) {
          timer = setTimeout(schedule, Math.max(0, intervalMs - (performance.now() - startedAt)));
          timer.unref();
        }
      });
  }

  return {
    telemetry: metrics.telemetry,
    probe(config) {
      const series = toTimeSeries(
        [
          {
            family: { name: "orgplane_integration_test", help: "", type: "gauge" },
            labels: [{ name: "org_id", value: config.orgId }],
            value: 1,
          },
        ],
        clock.now().getTime(),
      );
      return push(config, remoteWriteBody(series));
    },
    render: (orgId) => metrics.render(orgId),
    exportOnce: () => runInterval(false),
    async start() {
      if (!stopped) {
        return;
      }
      stopped = false;
      timer = setTimeout(schedule, intervalMs);
      timer.unref();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      wakeSleeper?.();
      await running;
      await lease.release();
    },
  };
}
