import { decimalOfNumber, fromUnits, multiplyDecimals, toUnits } from "../../lib/decimal.ts";
import type { JsonObject, JsonValue } from "../../lib/json.ts";
import type {
  Catalog,
  CatalogMeter,
  UsageView,
  UsageViewCount,
  UsageViewField,
  UsageViewNode,
} from "../catalog/catalog.types.ts";
import type { MeterTotal, UsageProject, UsageViewData, UsageViewNeeds } from "./usage.types.ts";

/**
 * The catalog's usage view (docs/usage-view.md): what `summary` of GET /v1/organizations/{org_id}/usage
 * shows. Pure: `viewNeeds` says which parts of UsageViewData the view reads, `renderUsageView` turns the
 * data into the JSON object. A catalog without `usage_view` gets `defaultUsageView`.
 */

/** The counts Orgplane keeps itself; every other quota's use is the product's (data.quotaUsed). */
const OWNED: Record<UsageViewCount, true> = {
  projects: true,
  members: true,
  api_keys: true,
  invitations: true,
};

function isOwned(quota: string): quota is UsageViewCount {
  return Object.hasOwn(OWNED, quota);
}

/**
 * The view a catalog without `usage_view` shows: `meters` — each meter's aggregate over the range, by key;
 * `quotas` — each quota a plan or a meter names, with the plan's `limit` (null: unlimited) and its current
 * `used`. A group with nothing in it is left out.
 */
export function defaultUsageView(catalog: Catalog): UsageView {
  const view: UsageView = [];
  if (catalog.meters.length > 0) {
    view.push({
      name: "meters",
      node: {
        kind: "group",
        fields: catalog.meters.map((m) => ({ name: m.key, node: { kind: "meter", meter: m.key } })),
      },
    });
  }
  const quotas = [
    ...new Set([
      ...catalog.plans.flatMap((p) => Object.keys(p.quotas)),
      ...catalog.meters.flatMap((m) => (m.quota === null ? [] : [m.quota])),
    ]),
  ];
  if (quotas.length > 0) {
    view.push({
      name: "quotas",
      node: {
        kind: "group",
        fields: quotas.map((q) => ({
          name: q,
          node: {
            kind: "group",
            fields: [
              { name: "limit", node: { kind: "quota_limit", quota: q } },
              { name: "used", node: { kind: "quota_used", quota: q } },
            ],
          },
        })),
      },
    });
  }
  return view;
}

/** The catalog's view, or the default one when it has none. */
export function usageViewOf(catalog: Catalog): UsageView {
  return catalog.usageView ?? defaultUsageView(catalog);
}

function* nodesOf(fields: readonly UsageViewField[]): Generator<{ node: UsageViewNode; inProject: boolean }> {
  for (const { node } of fields) {
    yield { node, inProject: false };
    if (node.kind === "group") {
      yield* nodesOf(node.fields);
    } else if (node.kind === "per_project") {
      for (const inner of nodesOf(node.fields)) {
        yield { node: inner.node, inProject: true };
      }
    }
  }
}

/**
 * What parts of UsageViewData `view` reads (undefined: the catalog's default view), so the service
 * queries only those:
 * - `gauges`: a `gauge` source anywhere (fill `gauges` and `gaugesByProject`);
 * - `byProject`: a meter-aggregate source (meter, meters, credits, cost, benchmark_cost, savings) or a
 *   gauge inside `per_project`;
 * - `projects`: a `per_project` list; `counts`: a `count`, or a `quota_used` of a quota Orgplane counts;
 * - `quotaUsed`: the other quotas of `quota_used`; `last7Days`: the meters of `rate_7d`;
 * - `history`: the meters of `history` lists; `webhookDeliveryRate7d`: its source.
 * `range`, `quotas` and `totals` are always filled.
 */
export function viewNeeds(view: UsageView | undefined, catalog: Catalog): UsageViewNeeds {
  const needs: UsageViewNeeds = {
    last7Days: [],
    history: [],
    gauges: false,
    byProject: false,
    counts: [],
    projects: false,
    quotaUsed: [],
    webhookDeliveryRate7d: false,
  };
  const add = (list: string[], items: readonly string[]) => {
    for (const item of items) {
      if (!list.includes(item)) {
        list.push(item);
      }
    }
  };
  for (const { node, inProject } of nodesOf(view ?? defaultUsageView(catalog))) {
    switch (node.kind) {
      case "per_project":
        needs.projects = true;
        break;
      case "history":
        add(needs.history, [node.meter]);
        break;
      case "gauge":
        needs.gauges = true;
        needs.byProject ||= inProject;
        break;
      case "meter":
      case "meters":
      case "credits":
      case "cost":
      case "benchmark_cost":
      case "savings":
        needs.byProject ||= inProject;
        break;
      case "quota_used":
        if (isOwned(node.quota)) {
          add(needs.counts, [node.quota]);
        } else {
          add(needs.quotaUsed, [node.quota]);
        }
        break;
      case "count":
        add(needs.counts, [node.of]);
        break;
      case "rate_7d":
        add(needs.last7Days, [...node.success, ...node.total]);
        break;
      case "webhook_delivery_rate_7d":
        needs.webhookDeliveryRate7d = true;
        break;
      default:
        break;
    }
  }
  return needs;
}

/** A number from an exact decimal: the nearest double (so 1000 × 0.000002 renders 0.002, not 0.0020000000000000000004). */
function numberOf(units: bigint): number {
  return Number(fromUnits(units));
}

/** An aggregate as exact units (values are finite and non-negative; a non-finite one counts as 0). */
function unitsOf(value: number): bigint {
  return toUnits(decimalOfNumber(value) ?? "0");
}

/** Where meter sources read from: the organization's totals, or one project's. */
type Scope = {
  totals: (meter: string) => MeterTotal | undefined;
  gauge: (meter: string) => number;
  project: UsageProject | null;
};

/**
 * `summary`: the view rendered over `data` (undefined view: the catalog's default one). Counts and
 * aggregates are JSON numbers; credits, costs, benchmark costs and savings are computed exactly in
 * decimal and rendered as the nearest JSON number; rates are fractions (0..1) or null when nothing was
 * counted; times are RFC 3339 strings.
 */
export function renderUsageView(
  view: UsageView | undefined,
  catalog: Catalog,
  data: UsageViewData,
): JsonObject {
  const meters = new Map<string, CatalogMeter>(catalog.meters.map((m) => [m.key, m]));
  const org: Scope = {
    totals: (m) => data.totals.get(m),
    gauge: (m) => data.gauges.get(m) ?? 0,
    project: null,
  };

  /** Σ over the meters of aggregate × the per-unit price `price` picks, in exact units. */
  const priced = (
    scope: Scope,
    list: readonly string[],
    price: (m: CatalogMeter) => string | null,
  ): bigint => {
    let total = 0n;
    for (const key of list) {
      const meter = meters.get(key);
      const perUnit = meter === undefined ? null : price(meter);
      const value = scope.totals(key)?.value ?? 0;
      if (perUnit !== null && value !== 0) {
        total += toUnits(multiplyDecimals(fromUnits(unitsOf(value)), perUnit));
      }
    }
    return total;
  };
  const cost = (scope: Scope, list: readonly string[]) => priced(scope, list, (m) => m.costPerUnit);
  const benchmark = (scope: Scope, list: readonly string[]) =>
    priced(scope, list, (m) => m.benchmarkCostPerUnit);
  const sum7d = (list: readonly string[]) => list.reduce((s, m) => s + (data.last7Days.get(m) ?? 0), 0);

  const renderNode = (node: UsageViewNode, scope: Scope): JsonValue => {
    switch (node.kind) {
      case "group":
        return renderFields(node.fields, scope);
      case "per_project":
        return data.projects.map((p) => {
          const rows = data.byProject.get(p.id);
          const gauges = data.gaugesByProject.get(p.id);
          return renderFields(node.fields, {
            totals: (m) => rows?.get(m),
            gauge: (m) => gauges?.get(m) ?? 0,
            project: p,
          });
        });
      case "history":
        return (data.history.get(node.meter) ?? []).map((point) => ({
          [node.timeField]: point.at.toISOString(),
          [node.valueField]: point.value,
        }));
      case "meter":
        return scope.totals(node.meter)?.value ?? 0;
      case "meters":
        return numberOf(node.meters.reduce((s, m) => s + unitsOf(scope.totals(m)?.value ?? 0), 0n));
      case "gauge":
        return scope.gauge(node.meter);
      case "credits":
        return numberOf(node.meters.reduce((s, m) => s + toUnits(scope.totals(m)?.credits ?? "0"), 0n));
      case "cost":
        return numberOf(cost(scope, node.meters));
      case "benchmark_cost":
        return numberOf(benchmark(scope, node.meters));
      case "savings":
        return numberOf(benchmark(scope, node.meters) - cost(scope, node.meters));
      case "quota_limit":
        return data.quotas[node.quota] ?? null;
      case "quota_used":
        return isOwned(node.quota) ? data.counts[node.quota] : (data.quotaUsed.get(node.quota) ?? 0);
      case "count":
        return data.counts[node.of];
      case "rate_7d": {
        const total = sum7d(node.total);
        return total === 0 ? null : sum7d(node.success) / total;
      }
      case "webhook_delivery_rate_7d":
        return data.webhookDeliveryRate7d;
      case "range":
        return data.range[node.bound].toISOString();
      case "project":
        // The catalog refuses `project` outside per_project; a hand-built view gets null there.
        return scope.project === null ? null : scope.project[node.field];
    }
  };

  const renderFields = (fields: readonly UsageViewField[], scope: Scope): JsonObject => {
    const out: JsonObject = {};
    for (const { name, node } of fields) {
      out[name] = renderNode(node, scope);
    }
    return out;
  };

  return renderFields(view ?? defaultUsageView(catalog), org);
}
