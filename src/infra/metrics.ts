import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

export type HttpMetrics = {
  registry: Registry;
  observe(labels: { method: string; route: string; status: number }, seconds: number): void;
};

/** One registry per app instance, so tests can build several apps in one process. */
export function createHttpMetrics(options: { defaultMetrics: boolean }): HttpMetrics {
  const registry = new Registry();
  if (options.defaultMetrics) {
    collectDefaultMetrics({ register: registry });
  }
  const requests = new Counter({
    name: "orgplane_http_requests_total",
    help: "HTTP requests by route pattern, method and status",
    labelNames: ["method", "route", "status"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "orgplane_http_request_duration_seconds",
    help: "HTTP request latency by route pattern, method and status",
    labelNames: ["method", "route", "status"] as const,
    // From 1 ms (a cached authorize) to 5 s (a request stuck behind a lock).
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  /**
   * The counter and histogram children of each label set, kept: prom-client hashes the labels on every
   * call otherwise, which is a measurable part of a cached authorize. Route patterns, methods and statuses
   * are few, so this stays small.
   */
  const children = new Map<string, { count: { inc(): void }; time: { observe(value: number): void } }>();
  return {
    registry,
    observe(labels, seconds) {
      const id = `${labels.method} ${labels.route} ${labels.status}`;
      let child = children.get(id);
      if (child === undefined) {
        const l = { method: labels.method, route: labels.route, status: String(labels.status) };
        child = { count: requests.labels(l), time: duration.labels(l) };
        children.set(id, child);
      }
      child.count.inc();
      child.time.observe(seconds);
    },
  };
}
