import { hostname } from "node:os";
import type { Telemetry } from "../../domain/observability/telemetry.ts";
import type { Clock } from "../../lib/clock.ts";
import type { MetricsExportStore, OrgFigures } from "../../store/metrics-export.store.pg.ts";
import type { Label, TimeSeries } from "./remote-write.ts";

/*
 * Each organization's own series (docs/integrations.md, "Metrics (Prometheus)"): counters this process keeps
 * in memory, fed by the Telemetry port on the request paths, and figures read from the database. The same
 * samples are pushed by remote-write (exporter.ts) and rendered in the text format for GET …/metrics.
 */

/** Outcome label values past this many per organization and family are counted as `_other`. */
const MAX_OUTCOMES = 32;
/** Category label values past this many per organization are counted as `_other`. */
const MAX_CATEGORIES = 64;
/** The label value that takes whatever a bound leaves out. */
const OTHER = "_other";

type Kind = "counter" | "gauge";
type Family = { name: string; help: string; type: Kind };

/** Every family an organization's export may carry, in the order they are rendered. */
export const FAMILIES = {
  requests: {
    name: "orgplane_requests_total",
    help: "Requests to Orgplane's API counted against the organization's rate limits, by category and outcome (allowed, rate_limited)",
    type: "counter",
  },
  decisions: {
    name: "orgplane_authorize_decisions_total",
    help: "POST /v1/authorize decisions about the organization's keys, by category and outcome (allowed or the denial's reason)",
    type: "counter",
  },
  utilization: {
    name: "orgplane_rate_limit_utilization",
    help: "The highest share of the category's rate limit in use seen during the last export interval (0 to 1)",
    type: "gauge",
  },
  creditsBalance: {
    name: "orgplane_credits_balance",
    help: "The organization's credit balance",
    type: "gauge",
  },
  creditsPeriodUsed: {
    name: "orgplane_credits_period_used",
    help: "Credits used in the current credit period",
    type: "gauge",
  },
  usage: {
    name: "orgplane_usage",
    help: 'The current billing period\'s aggregate of each meter, per project ("": the organization itself; _other: projects past the 20 most active)',
    type: "gauge",
  },
  quota: {
    name: "orgplane_quota_utilization",
    help: "Used divided by the plan's limit, for each quota the plan limits",
    type: "gauge",
  },
  webhookDeliveries: {
    name: "orgplane_webhook_deliveries",
    help: "Webhook deliveries finished in the last 7 days, by outcome (delivered, failed)",
    type: "gauge",
  },
  webhookRatio: {
    name: "orgplane_webhook_delivery_success_ratio",
    help: "Delivered divided by finished webhook deliveries over the last 7 days (absent when none finished)",
    type: "gauge",
  },
} as const satisfies Record<string, Family>;

/** One sample of an organization's series: its family and labels (org_id first, then the family's own). */
export type MetricSample = { family: Family; labels: Label[]; value: number };

/** category → outcome → count. */
type CountsByCategory = Map<string, Map<string, number>>;

type OrgCounters = {
  requests: CountsByCategory;
  decisions: CountsByCategory;
  /** category → highest utilisation seen in the current window. */
  utilization: Map<string, number>;
  /** The same for the window closed at the last rotation (what a push carries). */
  closedUtilization: Map<string, number>;
  categories: Set<string>;
  /** Counts every change to the above: the exporter skips an organization whose count did not move. */
  changes: number;
};

export type OrgMetrics = {
  /** The sink for services.telemetry: records in memory only. */
  telemetry: Telemetry;
  /** This process's name in the `instance` label of its in-process series. */
  instance: string;
  /**
   * Close the current utilisation window: what it saw becomes what `samples` reports, until the next
   * rotation. The exporter rotates once per push interval.
   */
  rotate(): void;
  /**
   * A number that moves whenever the organization's in-process counters (or its closed utilisation window)
   * change; equal for two reads between which `samples` without the open window would be the same.
   */
  changes(orgId: string): number;
  /**
   * An organization's samples: this process's counters, and, when given, its database figures.
   * `includeOpenWindow`: utilisation also counts the window not yet closed (the pull endpoint's view).
   */
  samples(orgId: string, figures: OrgFigures | undefined, includeOpenWindow: boolean): MetricSample[];
  /** The organization's series in the Prometheus text format 0.0.4 (GET …/metrics): counters plus fresh figures. */
  render(orgId: string): Promise<string>;
  /** Read the figures of many organizations (set-based; see the store). */
  readFigures(orgIds: readonly string[]): Promise<OrgFigures[]>;
};

/** A name for this process that differs between processes and between starts: hostname, pid, start time. */
export function defaultInstance(): string {
  return `${hostname()}:${process.pid}:${Date.now().toString(36)}`;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) {
    return "NaN";
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  return String(value);
}

/** Render samples in the text exposition format 0.0.4: each family's HELP and TYPE, then its samples. */
export function renderExposition(samples: readonly MetricSample[]): string {
  const byFamily = new Map<string, MetricSample[]>();
  for (const s of samples) {
    const list = byFamily.get(s.family.name);
    if (list === undefined) {
      byFamily.set(s.family.name, [s]);
    } else {
      list.push(s);
    }
  }
  const lines: string[] = [];
  for (const family of Object.values(FAMILIES)) {
    const list = byFamily.get(family.name);
    if (list === undefined) {
      continue;
    }
    lines.push(`# HELP ${family.name} ${family.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    for (const s of list) {
      const labels = s.labels.map((l) => `${l.name}="${escapeLabel(l.value)}"`).join(",");
      lines.push(`${family.name}{${labels}} ${formatValue(s.value)}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

/** The remote-write time series of samples, all at `timestampMs`. */
export function toTimeSeries(samples: readonly MetricSample[], timestampMs: number): TimeSeries[] {
  return samples.map((s) => ({
    labels: [{ name: "__name__", value: s.family.name }, ...s.labels],
    samples: [{ value: s.value, timestampMs }],
  }));
}

/**
 * The per-organization registry. Recording is a few Map operations and never waits: it runs inside every
 * authorize decision and every counted API request. Label values are bounded per organization (categories
 * come from the catalog and outcomes from fixed reason codes; MAX_CATEGORIES and MAX_OUTCOMES only guard
 * against a bug elsewhere turning a label into an unbounded one).
 */
export function createOrgMetrics(options: {
  /** Database figures (src/store/metrics-export.store.pg.ts). */
  store: MetricsExportStore;
  clock: Clock;
  /** The `instance` label of this process's counters; defaultInstance() when left out. */
  instance?: string;
}): OrgMetrics {
  const instance = options.instance ?? defaultInstance();
  const orgs = new Map<string, OrgCounters>();

  function countersOf(orgId: string): OrgCounters {
    let org = orgs.get(orgId);
    if (org === undefined) {
      org = {
        requests: new Map(),
        decisions: new Map(),
        utilization: new Map(),
        closedUtilization: new Map(),
        categories: new Set(),
        changes: 0,
      };
      orgs.set(orgId, org);
    }
    return org;
  }

  function categoryOf(org: OrgCounters, category: string): string {
    if (org.categories.has(category)) {
      return category;
    }
    if (org.categories.size >= MAX_CATEGORIES) {
      return OTHER;
    }
    org.categories.add(category);
    return category;
  }

  function bump(counts: CountsByCategory, category: string, outcome: string): void {
    let byOutcome = counts.get(category);
    if (byOutcome === undefined) {
      byOutcome = new Map();
      counts.set(category, byOutcome);
    }
    const n = byOutcome.get(outcome);
    if (n !== undefined) {
      byOutcome.set(outcome, n + 1);
    } else if (byOutcome.size >= MAX_OUTCOMES) {
      byOutcome.set(OTHER, (byOutcome.get(OTHER) ?? 0) + 1);
    } else {
      byOutcome.set(outcome, 1);
    }
  }

  function observeLimit(
    org: OrgCounters,
    category: string,
    limit: { limit: number; remaining: number },
  ): void {
    if (limit.limit <= 0) {
      return;
    }
    const share = Math.min(1, Math.max(0, (limit.limit - limit.remaining) / limit.limit));
    const seen = org.utilization.get(category);
    if (seen === undefined || share > seen) {
      org.utilization.set(category, share);
    }
  }

  const telemetry: Telemetry = {
    authorizeDecision(event) {
      const org = countersOf(event.orgId);
      org.changes += 1;
      const category = categoryOf(org, event.category);
      bump(org.decisions, category, event.reason ?? "allowed");
      if (event.limit !== undefined) {
        observeLimit(org, category, event.limit);
      }
    },
    apiRequest(event) {
      const org = countersOf(event.orgId);
      org.changes += 1;
      const category = categoryOf(org, event.category);
      bump(org.requests, category, event.outcome);
      observeLimit(org, category, event.limit);
    },
  };

  function samples(
    orgId: string,
    figures: OrgFigures | undefined,
    includeOpenWindow: boolean,
  ): MetricSample[] {
    const out: MetricSample[] = [];
    const orgLabel: Label = { name: "org_id", value: orgId };
    const inProcess: Label[] = [orgLabel, { name: "instance", value: instance }];
    const org = orgs.get(orgId);
    if (org !== undefined) {
      for (const [family, counts] of [
        [FAMILIES.requests, org.requests],
        [FAMILIES.decisions, org.decisions],
      ] as const) {
        for (const [category, byOutcome] of counts) {
          for (const [outcome, value] of byOutcome) {
            out.push({
              family,
              labels: [
                ...inProcess,
                { name: "category", value: category },
                { name: "outcome", value: outcome },
              ],
              value,
            });
          }
        }
      }
      // Every category the organization has used: 0 for a window that saw no request of it.
      for (const category of org.categories) {
        const closed = org.closedUtilization.get(category) ?? 0;
        const open = includeOpenWindow ? (org.utilization.get(category) ?? 0) : 0;
        out.push({
          family: FAMILIES.utilization,
          labels: [...inProcess, { name: "category", value: category }],
          value: Math.max(closed, open),
        });
      }
    }
    if (figures !== undefined) {
      if (figures.credits !== null) {
        out.push({ family: FAMILIES.creditsBalance, labels: [orgLabel], value: figures.credits.balance });
        out.push({
          family: FAMILIES.creditsPeriodUsed,
          labels: [orgLabel],
          value: figures.credits.periodUsed,
        });
      }
      for (const u of figures.usage) {
        out.push({
          family: FAMILIES.usage,
          labels: [orgLabel, { name: "meter", value: u.meter }, { name: "project", value: u.project }],
          value: u.value,
        });
      }
      for (const q of figures.quotas) {
        out.push({
          family: FAMILIES.quota,
          labels: [orgLabel, { name: "quota", value: q.quota }],
          value: q.used / q.limit,
        });
      }
      const { delivered, failed } = figures.webhooks;
      out.push({
        family: FAMILIES.webhookDeliveries,
        labels: [orgLabel, { name: "outcome", value: "delivered" }],
        value: delivered,
      });
      out.push({
        family: FAMILIES.webhookDeliveries,
        labels: [orgLabel, { name: "outcome", value: "failed" }],
        value: failed,
      });
      if (delivered + failed > 0) {
        out.push({
          family: FAMILIES.webhookRatio,
          labels: [orgLabel],
          value: delivered / (delivered + failed),
        });
      }
    }
    return out;
  }

  return {
    telemetry,
    instance,
    rotate() {
      for (const org of orgs.values()) {
        if (org.utilization.size > 0 || org.closedUtilization.size > 0) {
          org.closedUtilization = org.utilization;
          org.utilization = new Map();
          org.changes += 1;
        }
      }
    },
    changes: (orgId) => orgs.get(orgId)?.changes ?? 0,
    samples,
    async render(orgId) {
      const [figures] = await options.store.readFigures([orgId], options.clock.now());
      return renderExposition(samples(orgId, figures, true));
    },
    readFigures: (orgIds) => options.store.readFigures(orgIds, options.clock.now()),
  };
}
