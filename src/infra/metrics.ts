import { Counter, collectDefaultMetrics, Registry } from "prom-client";

export type HttpMetrics = {
  /** Process metrics (prom-client's defaults, when asked for) and any other metric registered on it. */
  registry: Registry;
  observe(labels: { method: string; route: string; status: number }, seconds: number): void;
  /** The Prometheus text exposition of everything: the registry's metrics, then the HTTP ones. */
  text(): Promise<string>;
  contentType: string;
};

const REQUESTS = "orgplane_http_requests_total";
const DURATION = "orgplane_http_request_duration_seconds";
/** From 1 ms (a cached authorize) to 5 s (a request stuck behind a lock). */
const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One label set's figures: plain numbers, so an observation is a few additions. */
type Series = {
  labels: string;
  count: number;
  sum: number;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  buckets: Float64Array;
};

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/**
 * The HTTP request counter and latency histogram, kept by hand instead of through prom-client's Counter
 * and Histogram: those validate and hash the labels on every call, which measured as a large share of a
 * cached `POST /v1/authorize`. Here a label set is looked up once per request in a Map and observed with
 * a few additions; the text is written at scrape time, in the same exposition format. Label sets are
 * bounded: methods, route patterns (not paths) and statuses.
 *
 * One registry per app instance, so tests can build several apps in one process.
 */
export function createHttpMetrics(options: { defaultMetrics: boolean }): HttpMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) {
    collectDefaultMetrics({ register: registry });
  }
  const series = new Map<string, Series>();

  function render(): string {
    const lines = [
      `# HELP ${REQUESTS} HTTP requests by route pattern, method and status`,
      `# TYPE ${REQUESTS} counter`,
    ];
    for (const s of series.values()) {
      lines.push(`${REQUESTS}{${s.labels}} ${s.count}`);
    }
    lines.push(
      "",
      `# HELP ${DURATION} HTTP request latency by route pattern, method and status`,
      `# TYPE ${DURATION} histogram`,
    );
    for (const s of series.values()) {
      let cumulative = 0;
      for (let i = 0; i < BUCKETS.length; i++) {
        cumulative += s.buckets[i] ?? 0;
        lines.push(`${DURATION}_bucket{le="${BUCKETS[i]}",${s.labels}} ${cumulative}`);
      }
      lines.push(`${DURATION}_bucket{le="+Inf",${s.labels}} ${s.count}`);
      lines.push(`${DURATION}_sum{${s.labels}} ${s.sum}`);
      lines.push(`${DURATION}_count{${s.labels}} ${s.count}`);
    }
    return `${lines.join("\n")}\n`;
  }

  return {
    registry,
    contentType: registry.contentType,
    observe(labels, seconds) {
      const id = `${labels.method} ${labels.route} ${labels.status}`;
      let s = series.get(id);
      if (s === undefined) {
        s = {
          labels: `method="${escapeLabel(labels.method)}",route="${escapeLabel(labels.route)}",status="${labels.status}"`,
          count: 0,
          sum: 0,
          buckets: new Float64Array(BUCKETS.length + 1),
        };
        series.set(id, s);
      }
      let i = 0;
      while (i < BUCKETS.length && seconds > (BUCKETS[i] as number)) {
        i++;
      }
      s.buckets[i] = (s.buckets[i] ?? 0) + 1;
      s.count += 1;
      s.sum += seconds;
    },
    async text() {
      const others = await registry.metrics();
      return others.trim() === "" ? render() : `${others.trimEnd()}\n\n${render()}`;
    },
  };
}

/**
 * Webhook attempts by what they left the delivery in (`delivered`, `pending`: a retry is scheduled, `failed`:
 * the last attempt failed), on `registry`. Attempts are counted in batches, so prom-client's Counter is cheap
 * enough here.
 */
export function createWebhookAttemptCounter(registry: Registry): (outcome: string, count: number) => void {
  const counter = new Counter({
    name: "orgplane_webhook_attempts_total",
    help: "Webhook delivery attempts by the state they left the delivery in (delivered, pending, failed)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  return (outcome, count) => counter.inc({ outcome }, count);
}
