import { hostname } from "node:os";
import type { IntegrationResult, ProbeResult } from "../../domain/integrations/integrations.types.ts";
import type { AuthorizeDecisionEvent, Telemetry } from "../../domain/observability/telemetry.ts";
import type { Clock } from "../../lib/clock.ts";
import { createBoundedWarning, type Logger } from "../logger.ts";
import { type AuditReaderSettings, createAuditReader } from "./audit-reader.ts";
import { authorizeLine, pushBody, pushToLoki, streamJson, streamValue } from "./loki-push.ts";
import { OrgQueue } from "./org-queue.ts";
import type { LokiAuditSource, LokiIntegrations, LokiTarget, OutboundPoster } from "./types.ts";

/** Loki's default limit on a push is 4 MiB; 1 MiB batches stay well inside it and inside Grafana Cloud's. */
const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;
/** A line waits at most this long for others to share its push. */
const DEFAULT_FLUSH_DELAY_MS = 1000;
/** A push that has not been answered by then is a failure (and is retried): a dead endpoint holds a slot no longer. */
const DEFAULT_PUSH_TIMEOUT_MS = 10_000;
/** Retries: 1 s, 2 s, 4 s … doubling up to a minute between attempts, for as long as the lines are buffered. */
const DEFAULT_RETRY_BASE_MS = 1000;
const DEFAULT_RETRY_MAX_MS = 60_000;
/** Random extra on each retry delay (up to 10 %), so orgs sharing a Loki that comes back do not retry in step. */
const RETRY_JITTER = 0.1;
/** Pushes in flight for orgs whose last push went through. */
const DEFAULT_MAX_CONCURRENT_PUSHES = 32;
/**
 * Pushes in flight for orgs whose last push failed: a budget of their own, so any number of dead endpoints
 * (each holding its slot up to the push timeout) never take the slots of orgs whose Loki answers.
 */
const DEFAULT_MAX_RETRYING_PUSHES = 8;
/**
 * A push unanswered this long moves from the healthy budget to the retry budget: an endpoint that just died
 * (its first push still counts as healthy) holds a healthy slot no longer than this, not the whole timeout.
 */
const DEFAULT_SLOW_PUSH_MS = 2000;
/** The integrations service caches configurations for 30 s; reading them more often adds nothing. */
const DEFAULT_CONFIG_REFRESH_MS = 30_000;
/** Outcomes and dropped counts go to the integrations service at most this often, for all orgs in one statement. */
const DEFAULT_REPORT_INTERVAL_MS = 1000;
const DEFAULT_AUDIT_POLL_MS = 1000;
const DEFAULT_AUDIT: AuditReaderSettings = {
  lagMs: 2000,
  overlapMs: 10_000,
  pageSize: 2000,
  // Loki refuses entries older than a week by default (reject_old_samples_max_age); a day is plenty to catch up.
  catchUpMs: 24 * 3_600_000,
  startMarginMs: 5000,
  namedOrgsMax: 500,
  idleSaveMs: 10 * 60_000,
};
/** Cursors are saved this often (and at stop): a crash sends again at most this much of the audit trail. */
const DEFAULT_CURSOR_SAVE_MS = 30_000;
/** stop() gives pushes in flight and the last flush this long. */
const DEFAULT_STOP_TIMEOUT_MS = 5000;
/**
 * The dispatcher's period: a batch goes out at most this long before its flush delay is up. The batches due at
 * one tick start together, handed to the client's thread as one message: each message wakes that thread,
 * which may take the CPU of the thread that answers the API (see the metrics exporter's PACE_MS).
 */
const MAX_TICK_MS = 250;

export type LokiExporterSettings = {
  /** LOKI_ALLOWED_SAMPLE_RATE: the share of allowed authorize decisions sent (denials are all sent). */
  allowedSampleRate: number;
  /** LOKI_BUFFER_LINES: lines waiting per org; beyond it the oldest are dropped and counted. */
  bufferLines: number;
  /*
   * The rest is tuning, the defaults above unless given (the tests shorten the intervals to run in seconds).
   */
  /** A push's body at most (one line larger than this goes alone). */
  maxBatchBytes?: number;
  /** How long a line waits for others before its push goes. */
  flushDelayMs?: number;
  pushTimeoutMs?: number;
  /** The first retry's delay; each next one doubles, up to `retryMaxMs`. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Pushes in flight at once for orgs whose last push went through, and for those whose last push failed. */
  maxConcurrentPushes?: number;
  maxRetryingPushes?: number;
  /** A push unanswered this long counts against the retry budget. */
  slowPushMs?: number;
  /** How often the Loki integrations are read again (changes, new and removed orgs). */
  configRefreshMs?: number;
  /** How often outcomes and dropped counts are recorded. */
  reportIntervalMs?: number;
  /** How often the audit trail is read, and how (lag, overlap, page size, catch-up bound, start margin). */
  auditPollMs?: number;
  audit?: Partial<AuditReaderSettings>;
  /** How often the audit cursors are saved. */
  cursorSaveMs?: number;
  /** How long stop() pushes what is buffered. */
  stopTimeoutMs?: number;
};

export type LokiExporterOptions = {
  /** `services.integrations`: the orgs' Loki configurations, and where outcomes are recorded. */
  integrations: LokiIntegrations;
  /** The SSRF-guarded client (createOutboundClient with INTEGRATIONS_ALLOW_PRIVATE). */
  client: OutboundPoster;
  /**
   * The audit trail (createLokiAuditSource over the database's pool, src/store/loki-export.store.pg.ts);
   * without it only authorize decisions are exported.
   */
  audit?: LokiAuditSource;
  clock: Clock;
  logger: Logger;
  settings: LokiExporterSettings;
  /** The `instance` label of this process's authorize stream; hostname:pid unless given. */
  instance?: string;
  /** `Orgplane/<version>`. */
  userAgent?: string;
};

export type LokiExporter = {
  /** The sink for `services.telemetry`: O(1), never waits. */
  telemetry: Telemetry;
  /**
   * The Loki probe of the integrations service's test call (`setProbes({ loki })`): one line
   * `{"message":"orgplane integration test"}` with source "test", pushed now.
   */
  probe(config: LokiTarget): Promise<ProbeResult>;
  start(): Promise<void>;
  /** Stops reading, pushes what it can within the stop timeout, saves the audit cursors, reports. */
  stop(): Promise<void>;
  /** Push every waiting line now (each org's queue until it is empty or a push fails); resolves when done. */
  flush(): Promise<void>;
};

function settled(promise: Promise<unknown>): Promise<void> {
  return promise.then(
    () => {},
    () => {},
  );
}

/** A task run every `ms`, never two at once; `stop()` waits for the run in progress. */
function repeat(ms: number, task: () => Promise<void>) {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const schedule = () => {
    if (stopped) {
      return;
    }
    timer = setTimeout(() => {
      running = task().finally(() => {
        running = undefined;
        schedule();
      });
    }, ms);
    timer.unref();
  };
  schedule();
  return {
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The per-org Loki export (docs/integrations.md, "Logs (Loki)"): authorize denials (and sampled allowed
 * decisions) of this process and, in the one process holding the lock, the orgs' audit events, pushed to
 * each org's own Loki in batches, with retries, within a bounded buffer per org.
 */
export function createLokiExporter(options: LokiExporterOptions): LokiExporter {
  const { integrations, client, clock, logger, settings } = options;
  const instance = options.instance ?? `${hostname()}:${process.pid}`;
  const userAgent = options.userAgent ?? "Orgplane";
  const sampleRate = Math.min(1, Math.max(0, settings.allowedSampleRate));
  const capacity = settings.bufferLines;
  const maxBatchBytes = settings.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
  const flushDelayMs = settings.flushDelayMs ?? DEFAULT_FLUSH_DELAY_MS;
  const tickMs = Math.max(1, Math.min(MAX_TICK_MS, Math.floor(flushDelayMs / 4)));
  const pushTimeoutMs = settings.pushTimeoutMs ?? DEFAULT_PUSH_TIMEOUT_MS;
  const retryBaseMs = settings.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
  const retryMaxMs = settings.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
  const maxConcurrent = settings.maxConcurrentPushes ?? DEFAULT_MAX_CONCURRENT_PUSHES;
  const maxRetrying = settings.maxRetryingPushes ?? DEFAULT_MAX_RETRYING_PUSHES;
  const slowPushMs = settings.slowPushMs ?? DEFAULT_SLOW_PUSH_MS;
  const stopTimeoutMs = settings.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;

  const pushWarning = createBoundedWarning(logger, "Loki push failed; the batch is kept and retried");
  const rejectWarning = createBoundedWarning(logger, "Loki refused a batch; its lines are dropped");
  const backgroundWarning = createBoundedWarning(logger, "Loki export background work failed");

  /** Orgs with a Loki integration, by org id: the sink finds an org's queue in one map lookup. */
  const queues = new Map<string, OrgQueue>();
  /** The integrations `queues` were last brought in line with (the service's array, kept while unchanged). */
  let refreshedFrom: readonly LokiTarget[] | undefined;
  /** Bumped whenever a queue is added or removed (the audit reader matches its orgs only then). */
  let queuesVersion = 0;
  /** Queues with an outcome not yet reported: the report each second visits these, not every queue. */
  const reportable = new Set<OrgQueue>();
  /** Queues with lines waiting and no push in flight, or waiting for a retry. */
  const pending = new Set<OrgQueue>();
  const inFlight = new Set<Promise<void>>();
  let healthyInFlight = 0;
  let retryingInFlight = 0;
  /** During flush(): the queues whose push failed, not tried again by it. */
  let flushFailed: Set<OrgQueue> | undefined;
  let dispatchSoon = false;
  let stopped = false;
  let ticker: NodeJS.Timeout | undefined;
  const loops: Array<ReturnType<typeof repeat>> = [];

  const reader =
    options.audit === undefined
      ? undefined
      : createAuditReader({
          source: options.audit,
          queues,
          queuesVersion: () => queuesVersion,
          clock,
          settings: { ...DEFAULT_AUDIT, ...settings.audit },
          queued: (queue) => pending.add(queue),
        });

  function retryDelay(failures: number): number {
    const base = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.min(30, failures - 1));
    return Math.round(base * (1 + RETRY_JITTER * Math.random()));
  }

  function push(queue: OrgQueue): void {
    let retrying = queue.failures > 0;
    const batch = queue.take(maxBatchBytes);
    const target = queue.target;
    if (retrying) {
      retryingInFlight += 1;
    } else {
      healthyInFlight += 1;
    }
    const slow = retrying
      ? undefined
      : setTimeout(() => {
          healthyInFlight -= 1;
          retryingInFlight += 1;
          retrying = true;
        }, slowPushMs);
    slow?.unref();
    const run = (async () => {
      try {
        const outcome = await pushToLoki(client, target, batch.body, pushTimeoutMs, userAgent);
        if (queue.removed) {
          return;
        }
        if (outcome.ok) {
          queue.succeeded();
        } else if (outcome.rejected) {
          queue.rejected(outcome.error ?? "refused");
          rejectWarning({
            org_id: target.orgId,
            status: outcome.status,
            error: outcome.error,
            lines: batch.lines,
          });
        } else {
          queue.failed(outcome.error ?? "failed", clock.now().getTime() + retryDelay(queue.failures + 1));
          flushFailed?.add(queue);
          pushWarning({ org_id: target.orgId, status: outcome.status, error: outcome.error });
        }
        reportable.add(queue);
      } finally {
        clearTimeout(slow);
        if (retrying) {
          retryingInFlight -= 1;
        } else {
          healthyInFlight -= 1;
        }
        if (!queue.removed && queue.waiting() > 0) {
          pending.add(queue);
        }
        // A freed slot, or the rest of a full batch: the next dispatch need not wait for the tick.
        if (!dispatchSoon && !stopped) {
          dispatchSoon = true;
          setImmediate(() => {
            dispatchSoon = false;
            dispatch(false);
          });
        }
      }
    })().catch((err: unknown) =>
      backgroundWarning({ task: "pushing to Loki", err: { message: errorText(err) } }),
    );
    inFlight.add(run);
    void run.then(() => inFlight.delete(run));
  }

  /** Start the pushes that are due and fit in the budgets; `force` ignores the flush delay and backoff. */
  function dispatch(force: boolean): void {
    const now = clock.now().getTime();
    for (const queue of pending) {
      if (queue.inFlight !== undefined) {
        continue;
      }
      if (queue.waiting() === 0) {
        pending.delete(queue);
        continue;
      }
      if (force ? flushFailed?.has(queue) === true : queue.retryAt > now) {
        continue;
      }
      const due =
        force ||
        queue.retryAt > 0 ||
        queue.bytes() >= maxBatchBytes ||
        queue.waiting() >= capacity ||
        now - queue.firstAt + tickMs >= flushDelayMs;
      if (!due) {
        continue;
      }
      if (queue.failures > 0 ? retryingInFlight >= maxRetrying : healthyInFlight >= maxConcurrent) {
        continue;
      }
      pending.delete(queue);
      push(queue);
    }
  }

  async function refresh(): Promise<void> {
    const targets = await integrations.active("loki");
    if (targets === refreshedFrom) {
      // The integrations service answers the very same array while no configuration changed: 10,000 orgs are
      // not compared with their queues again (every 30 s, at once).
      return;
    }
    const live = new Set<string>();
    for (const target of targets) {
      live.add(target.orgId);
      const queue = queues.get(target.orgId);
      if (queue === undefined) {
        queues.set(target.orgId, new OrgQueue(target, capacity, instance));
        queuesVersion += 1;
        continue;
      }
      const changed =
        queue.target.endpoint !== target.endpoint ||
        queue.target.id !== target.id ||
        queue.target.token !== target.token;
      queue.target = target;
      if (changed && queue.failures > 0) {
        // New settings deserve a try now rather than after the old ones' backoff.
        queue.retryAt = 0;
      }
    }
    for (const [orgId, queue] of queues) {
      if (!live.has(orgId)) {
        // Removed: nowhere to send its lines any more.
        queue.removed = true;
        queues.delete(orgId);
        queuesVersion += 1;
        pending.delete(queue);
        reportable.delete(queue);
      }
    }
    refreshedFrom = targets;
  }

  async function report(): Promise<void> {
    const results: IntegrationResult[] = [];
    const reported: Array<[OrgQueue, IntegrationResult]> = [];
    // Dropped lines wait for the next push's outcome: a report always says how the endpoint is doing.
    for (const queue of reportable) {
      if (queue.outcome === undefined) {
        continue;
      }
      const result: IntegrationResult = {
        orgId: queue.target.orgId,
        kind: "loki",
        ok: queue.outcome.ok,
        error: queue.outcome.error,
        droppedBatches: queue.droppedBatches,
        droppedLines: queue.droppedLines,
      };
      results.push(result);
      reported.push([queue, result]);
      queue.outcome = undefined;
      queue.droppedBatches = 0;
      queue.droppedLines = 0;
    }
    reportable.clear();
    if (results.length === 0) {
      return;
    }
    try {
      await integrations.recordResults(results);
    } catch (err) {
      // Kept for the next report: counts add up, the newer outcome wins.
      for (const [queue, result] of reported) {
        queue.outcome ??= { ok: result.ok, error: result.error };
        queue.droppedBatches += result.droppedBatches;
        queue.droppedLines += result.droppedLines;
        if (!queue.removed) {
          reportable.add(queue);
        }
      }
      throw err;
    }
  }

  function background(task: () => Promise<void>, what: string): () => Promise<void> {
    return () =>
      task().catch((err: unknown) => backgroundWarning({ task: what, err: { message: errorText(err) } }));
  }

  async function flush(): Promise<void> {
    flushFailed = new Set();
    try {
      for (;;) {
        for (const queue of queues.values()) {
          if (queue.waiting() > 0) {
            pending.add(queue);
          }
        }
        dispatch(true);
        if (inFlight.size === 0) {
          return;
        }
        await Promise.race(inFlight);
      }
    } finally {
      flushFailed = undefined;
    }
  }

  const telemetry: Telemetry = {
    authorizeDecision(event: AuthorizeDecisionEvent): void {
      // Most decisions are allowed ones left out by the sample: they cost no lookup (this runs in every
      // authorize call).
      if (event.allowed && !(sampleRate >= 1 || (sampleRate > 0 && Math.random() < sampleRate))) {
        return;
      }
      const queue = queues.get(event.orgId);
      // Stopped: nothing would send the line any more.
      if (queue === undefined || stopped) {
        return;
      }
      const ms = event.at.getTime();
      queue.appendAuthorize(ms, authorizeLine(event), ms);
      if (queue.inFlight === undefined) {
        pending.add(queue);
      }
    },
    apiRequest(): void {
      // Requests are counted by the metrics export; they are not log lines.
    },
  };

  return {
    telemetry,

    async probe(config: LokiTarget): Promise<ProbeResult> {
      const line = streamValue(
        clock.now().getTime(),
        JSON.stringify({ message: "orgplane integration test" }),
      );
      const body = pushBody([streamJson({ org_id: config.orgId, source: "test" }, [line])]);
      const outcome = await pushToLoki(client, config, body, pushTimeoutMs, userAgent);
      return { ok: outcome.ok, status: outcome.status, error: outcome.error, latencyMs: outcome.latencyMs };
    },

    async start(): Promise<void> {
      await background(refresh, "reading the Loki integrations")();
      ticker = setInterval(() => dispatch(false), tickMs);
      ticker.unref();
      loops.push(
        repeat(
          settings.configRefreshMs ?? DEFAULT_CONFIG_REFRESH_MS,
          background(refresh, "reading the Loki integrations"),
        ),
      );
      loops.push(
        repeat(
          settings.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS,
          background(report, "recording Loki results"),
        ),
      );
      if (reader !== undefined) {
        loops.push(
          repeat(
            settings.auditPollMs ?? DEFAULT_AUDIT_POLL_MS,
            background(reader.poll, "reading audit events"),
          ),
        );
        loops.push(
          repeat(
            settings.cursorSaveMs ?? DEFAULT_CURSOR_SAVE_MS,
            background(reader.save, "saving audit cursors"),
          ),
        );
      }
    },

    async stop(): Promise<void> {
      stopped = true;
      clearInterval(ticker);
      await Promise.all(loops.map((loop) => loop.stop()));
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, stopTimeoutMs);
      });
      await Promise.race([settled(flush()), bound]);
      clearTimeout(timer);
      // Lines still undelivered hold their orgs' cursors back: a restart reads those events again.
      await background(async () => reader?.save(true), "saving audit cursors")();
      await background(report, "recording Loki results")();
      await background(async () => options.audit?.close(), "releasing the audit export lock")();
    },

    flush,
  };
}
