import { z } from "zod";
import type {
  Catalog,
  PlanDefinition,
  UsageView,
  UsageViewCount,
  UsageViewField,
  UsageViewNode,
} from "./catalog.types.ts";

/**
 * orgplane.yaml, as zod validates it. Imports nothing but zod (and types), so it stays in the domain:
 * the YAML reading and file positions live in src/infra/catalog-file.ts. `schemas/orgplane.schema.json`
 * is generated from `CatalogFileSchema` (`npm run catalog-schema:generate`).
 */

/** Plan, category, meter, quota and feature keys. */
export const CATALOG_KEY_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
const KEY_MESSAGE = "must be 1–64 lower-case letters, digits or underscores, starting with a letter";
const key = z
  .string({ error: "must be a string" })
  .regex(CATALOG_KEY_PATTERN, { error: KEY_MESSAGE })
  .describe("Stable identifier: lower-case letters, digits and underscores");
const text = (max: number) => z.string({ error: "must be a string" }).trim().min(1).max(max);
const DECIMAL_MESSAGE = "must be a decimal string";
/** Exact decimal: a string, so YAML never turns 0.1 into a float. Up to 18 digits before and after the point. */
const decimal = z
  .string({ error: DECIMAL_MESSAGE })
  .regex(/^(0|[1-9][0-9]{0,17})(\.[0-9]{1,18})?$/, { error: DECIMAL_MESSAGE })
  .describe('Non-negative exact decimal written as a string, e.g. "1000" or "0.25"');
const count = z
  .number({ error: "must be a whole number" })
  .int({ error: "must be a whole number" })
  .min(0, { error: "must be 0 or more" })
  .max(Number.MAX_SAFE_INTEGER);

export const CategorySchema = z.strictObject({
  key,
  description: text(500).optional(),
});

export const MeterSchema = z.strictObject({
  key,
  unit: text(32).describe("What one unit is: request, token, byte, mb, minute…"),
  description: text(500).optional(),
  aggregation: z
    .enum(["sum", "count", "max", "last", "unique_count"], {
      error: "must be sum, count, max, last or unique_count",
    })
    .default("sum")
    .describe(
      "How events combine: sum of values, count of events, largest value, latest value (a gauge), distinct values",
    ),
  cost_per_unit: decimal.optional().describe("What one unit costs, in usage_currency (major units)"),
  benchmark_cost_per_unit: decimal
    .optional()
    .describe(
      "What one unit would cost on the benchmark (e.g. a reference model); savings = benchmark − cost",
    ),
  quota: key.optional().describe("The product-owned quota this meter's use counts against"),
});

export const PriceSchema = z.strictObject({
  amount_minor: count.describe("Integer minor units (cents)"),
  currency: z
    .string({ error: "must be a string" })
    .regex(/^[a-z]{3}$/, { error: "must be a lower-case ISO 4217 code such as usd" }),
  interval: z.enum(["month", "year"], { error: "must be month or year" }),
});

export const PlanSchema = z.strictObject({
  key,
  name: text(100),
  tier: text(64).describe("The platform's own tier label, e.g. pro, GROWTH, Ship"),
  price: PriceSchema.nullable().describe("null: free, or priced by contract"),
  trial_days: count.max(365).default(0),
  monthly_credits: decimal
    .nullable()
    .describe("Credits granted each month; null: custom, set per organization"),
  rate_limits: z
    .record(key, count.min(1, { error: "must be at least 1 request per minute" }))
    .default({})
    .describe("Requests per minute by rate-limit category"),
  quotas: z
    .record(key, count.nullable())
    .default({})
    .describe("Any named count or size (bytes); null: unlimited"),
  features: z.record(key, z.boolean({ error: "must be true or false" })).default({}),
  visibility: z.enum(["public", "private"], { error: "must be public or private" }).default("public"),
  stripe_price_id: z
    .string({ error: "must be a string" })
    .regex(/^price_[A-Za-z0-9]{1,64}$/, { error: "must be a Stripe price id (price_…)" })
    .nullable()
    .default(null),
  auto_upgrade: z
    .array(
      z.strictObject({
        when_balance_at_least: decimal.describe(
          "The credit balance a purchase must bring the organization to",
        ),
        plan: key.describe("The plan the organization moves to"),
      }),
    )
    .max(16)
    .default([])
    .describe("Move to another plan when a purchase of credits brings the balance to a threshold"),
});

/** Quotas Orgplane counts from its own tables (quotas.service.ts OWNED_QUOTAS). */
const ORGPLANE_COUNTED_QUOTAS: readonly string[] = ["members", "projects", "api_keys", "invitations"];

// ---------------------------------------------------------------------------------------------------
// usage_view (docs/usage-view.md): what `summary` of GET /v1/organizations/{org_id}/usage shows.
//
// A view is an object of fields; each field is a SOURCE (an object with exactly one member named by a
// source keyword), a LIST (`{per_project: {…fields}}` or `{history: {…}}`) or a nested object of fields.
// An object whose only member is named by a keyword is always that source or list.
//
// Two layers: `checkUsageViewShape` (run first, as a preprocess) walks the raw value and reports the first
// mistakes with their exact paths; the zod union below then parses the checked value and describes the
// syntax for the JSON Schema. Cross-references (meters, quotas) are checked in the catalog's superRefine.

/** The file form of a view: what the YAML holds after parsing. */
export type UsageViewFileFields = { [name: string]: UsageViewFileNode };
type MeterList = string | string[];
export type UsageViewFileNode =
  | { meter: string }
  | { meters: string[] }
  | { gauge: string }
  | { credits: MeterList }
  | { cost: MeterList }
  | { benchmark_cost: MeterList }
  | { savings: MeterList }
  | { quota_limit: string }
  | { quota_used: string }
  | { count: UsageViewCount }
  | { rate_7d: { success: string[]; total: string[] } }
  | { webhook_delivery_rate_7d: Record<string, never> }
  | { range: "from" | "to" }
  | { project: "id" | "name" | "state" }
  | { per_project: UsageViewFileFields }
  | { history: { meter: string; time_field: string; value_field: string } }
  | UsageViewFileFields;

const meterKeys = z
  .array(key, { error: "must be a list of meter keys" })
  .min(1, { error: "must name at least one meter" })
  .max(64);
const oneOrMoreMeters = z.union([key, meterKeys], {
  error: "must be a meter key or a list of meter keys",
});

/** The value each source and list keyword takes (per_project: an object of fields, checked separately). */
const USAGE_SOURCES = {
  meter: key.describe("The meter's aggregate over the range (per its aggregation)"),
  meters: meterKeys.describe("The sum of the meters' aggregates over the range"),
  gauge: key.describe("The current value of a gauge (aggregation: last) meter, summed over projects"),
  credits: oneOrMoreMeters.describe("Credits the meters' usage over the range cost (credit_costs)"),
  cost: oneOrMoreMeters.describe("The meters' aggregate × cost_per_unit, in usage_currency"),
  benchmark_cost: oneOrMoreMeters.describe("The meters' aggregate × benchmark_cost_per_unit"),
  savings: oneOrMoreMeters.describe("benchmark_cost − cost of the meters"),
  quota_limit: key.describe("The plan's limit of the quota; null: unlimited"),
  quota_used: key.describe("The quota's current use, as POST …/quotas/{quota}/check counts it"),
  count: z
    .enum(["projects", "members", "api_keys", "invitations"], {
      error: "must be projects, members, api_keys or invitations",
    })
    .describe("A count Orgplane keeps: live projects, members, active API keys, pending invitations"),
  rate_7d: z
    .strictObject({ success: meterKeys, total: meterKeys })
    .describe("Σ success ÷ Σ total of the meters over the 7 days before now; null when the total is 0"),
  webhook_delivery_rate_7d: z
    .strictObject({})
    .describe("Share of webhook deliveries that succeeded over 7 days; null when there were none"),
  range: z.enum(["from", "to"], { error: "must be from or to" }).describe("The range's start or end"),
  project: z
    .enum(["id", "name", "state"], { error: "must be id, name or state" })
    .describe("Inside per_project: the row's project id, name or state"),
  history: z
    .strictObject({
      meter: key.describe("A gauge (aggregation: last) meter"),
      time_field: key.describe("The name of each point's time member, e.g. sampled_at"),
      value_field: key.describe("The name of each point's value member, e.g. storage_bytes"),
    })
    .describe("One point per bucket of the range: the gauge's organization total at the bucket's end"),
} as const;
type UsageSourceKeyword = keyof typeof USAGE_SOURCES;
const USAGE_KEYWORDS: readonly string[] = [...Object.keys(USAGE_SOURCES), "per_project"];

/** Bounds on a view: it is configuration, not data. */
const MAX_VIEW_FIELDS = 100;
const MAX_VIEW_DEPTH = 8;

/** Sources that are the organization's and so mean nothing per project (refused inside per_project). */
const ORG_ONLY: readonly string[] = [
  "count",
  "quota_used",
  "rate_7d",
  "webhook_delivery_rate_7d",
  "per_project",
  "history",
];

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The keyword of a one-member object named by one, else undefined (a group of fields). */
function keywordOf(value: Record<string, unknown>): string | undefined {
  const names = Object.keys(value);
  const only = names[0];
  return names.length === 1 && only !== undefined && USAGE_KEYWORDS.includes(only) ? only : undefined;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let at = value;
  for (const part of path) {
    if (typeof at !== "object" || at === null) {
      return undefined;
    }
    at = (at as Record<PropertyKey, unknown>)[part];
  }
  return at;
}

type ShapeIssue = { path: PropertyKey[]; message: string };
const NODE_MESSAGE =
  "must be a source ({meter: …}, {gauge: …}, {cost: …}, …), a list ({per_project: …}, {history: …}) or an object of fields";

function checkFields(
  value: unknown,
  path: PropertyKey[],
  depth: number,
  inProject: boolean,
  issues: ShapeIssue[],
): void {
  if (!isPlainObject(value)) {
    issues.push({ path, message: "must be an object of fields" });
    return;
  }
  const names = Object.keys(value);
  if (names.length === 0) {
    issues.push({ path, message: "must have at least one field" });
  } else if (names.length > MAX_VIEW_FIELDS) {
    issues.push({ path, message: `has more than ${MAX_VIEW_FIELDS} fields` });
  }
  if (depth > MAX_VIEW_DEPTH) {
    issues.push({ path, message: `nests deeper than ${MAX_VIEW_DEPTH} levels` });
    return;
  }
  for (const name of names) {
    if (!CATALOG_KEY_PATTERN.test(name)) {
      issues.push({ path: [...path, name], message: `field name ${KEY_MESSAGE}` });
      continue;
    }
    checkNode(value[name], [...path, name], depth + 1, inProject, issues);
  }
}

function checkNode(
  value: unknown,
  path: PropertyKey[],
  depth: number,
  inProject: boolean,
  issues: ShapeIssue[],
): void {
  if (!isPlainObject(value)) {
    issues.push({ path, message: NODE_MESSAGE });
    return;
  }
  const keyword = keywordOf(value);
  if (keyword === undefined) {
    // A keyword beside other members, with a source's value rather than fields: a source written wrong.
    const mixed = Object.keys(value).find(
      (name) => USAGE_KEYWORDS.includes(name) && !isPlainObject(value[name]),
    );
    if (mixed !== undefined) {
      issues.push({
        path,
        message: `is a source ('${mixed}') only when '${mixed}' is its one member; as a group of fields, each field must be a source, a list or an object`,
      });
      return;
    }
    checkFields(value, path, depth, inProject, issues);
    return;
  }
  if (inProject && ORG_ONLY.includes(keyword)) {
    issues.push({
      path: [...path, keyword],
      message:
        keyword === "per_project" || keyword === "history"
          ? "is a list, and lists cannot be inside per_project"
          : "is the organization's, so cannot be inside per_project",
    });
    return;
  }
  if (!inProject && keyword === "project") {
    issues.push({ path: [...path, keyword], message: "can only be used inside per_project" });
    return;
  }
  if (keyword === "per_project") {
    checkFields(value[keyword], [...path, keyword], depth + 1, true, issues);
    return;
  }
  const source = value[keyword];
  const parsed = USAGE_SOURCES[keyword as UsageSourceKeyword].safeParse(source);
  for (const issue of parsed.error?.issues ?? []) {
    const missing = issue.code === "invalid_type" && valueAt(source, issue.path) === undefined;
    issues.push({
      path: [...path, keyword, ...issue.path],
      message: missing ? "is required" : issue.message,
    });
  }
}

/** The shape mistakes of a raw usage_view (not its meter or quota names), each with its path. */
export function checkUsageViewShape(value: unknown): ShapeIssue[] {
  const issues: ShapeIssue[] = [];
  checkFields(value, [], 1, false, issues);
  return issues;
}

const UsageViewFieldsSchema: z.ZodType<UsageViewFileFields> = z.lazy(() =>
  z.record(key, UsageViewNodeSchema).describe("Fields: each a source, a list or a nested object of fields"),
);
const UsageViewNodeSchema: z.ZodType<UsageViewFileNode> = z.lazy(() =>
  z.union([
    ...(Object.keys(USAGE_SOURCES) as UsageSourceKeyword[]).map((k) =>
      z.strictObject({ [k]: USAGE_SOURCES[k] }),
    ),
    z
      .strictObject({ per_project: UsageViewFieldsSchema })
      .describe("One row per live project (oldest first); meter sources inside are the project's"),
    UsageViewFieldsSchema,
  ]),
) as z.ZodType<UsageViewFileNode>;

export const UsageViewSchema = z
  .preprocess((value, ctx) => {
    for (const issue of checkUsageViewShape(value)) {
      ctx.addIssue({ code: "custom", path: issue.path, message: issue.message, input: value });
    }
    return value;
  }, UsageViewFieldsSchema)
  .describe(
    "What summary of GET /v1/organizations/{org_id}/usage shows (docs/usage-view.md); absent: every meter's aggregate and every quota's limit and use",
  );

const asList = (m: MeterList): string[] => (typeof m === "string" ? [m] : m);

/** A checked node by its keyword: a source or list with its value, or a group of fields. */
type KeyedNode =
  | {
      [K in UsageSourceKeyword]: { keyword: K; value: z.output<(typeof USAGE_SOURCES)[K]> };
    }[UsageSourceKeyword]
  | { keyword: "per_project"; value: UsageViewFileFields }
  | { keyword: undefined; value: UsageViewFileFields };

function keyed(node: UsageViewFileNode): KeyedNode {
  const keyword = keywordOf(node);
  // The shape was checked (checkUsageViewShape, then the union): the keyword's value is its schema's output.
  return keyword === undefined
    ? { keyword, value: node as UsageViewFileFields }
    : ({ keyword, value: (node as Record<string, unknown>)[keyword] } as KeyedNode);
}

/** The parsed file form as the domain's UsageView (keyword objects become typed nodes). */
export function toUsageView(fields: UsageViewFileFields): UsageView {
  return Object.entries(fields).map(([name, node]): UsageViewField => ({ name, node: toUsageNode(node) }));
}

function toUsageNode(node: UsageViewFileNode): UsageViewNode {
  const k = keyed(node);
  switch (k.keyword) {
    case undefined:
      return { kind: "group", fields: toUsageView(k.value) };
    case "per_project":
      return { kind: "per_project", fields: toUsageView(k.value) };
    case "history":
      return {
        kind: "history",
        meter: k.value.meter,
        timeField: k.value.time_field,
        valueField: k.value.value_field,
      };
    case "meter":
      return { kind: "meter", meter: k.value };
    case "meters":
      return { kind: "meters", meters: k.value };
    case "gauge":
      return { kind: "gauge", meter: k.value };
    case "credits":
    case "cost":
    case "benchmark_cost":
    case "savings":
      return { kind: k.keyword, meters: asList(k.value) };
    case "quota_limit":
    case "quota_used":
      return { kind: k.keyword, quota: k.value };
    case "count":
      return { kind: "count", of: k.value };
    case "rate_7d":
      return { kind: "rate_7d", success: k.value.success, total: k.value.total };
    case "webhook_delivery_rate_7d":
      return { kind: "webhook_delivery_rate_7d" };
    case "range":
      return { kind: "range", bound: k.value };
    case "project":
      return { kind: "project", field: k.value };
  }
}

type MeterNeed = "gauge" | "cost" | "benchmark" | "credits" | "savings";

/** The meters and quotas a view names, checked against the catalog; each mistake with its path. */
function checkUsageViewReferences(
  file: Pick<CatalogFileInput, "meters" | "credit_costs" | "plans">,
  fields: UsageViewFileFields,
  addIssue: (path: PropertyKey[], message: string) => void,
): void {
  const meters = new Map(file.meters.map((m) => [m.key, m]));
  const quotas = new Set<string>([
    ...ORGPLANE_COUNTED_QUOTAS,
    ...file.plans.flatMap((p) => Object.keys(p.quotas)),
    ...file.meters.flatMap((m) => (m.quota === undefined ? [] : [m.quota])),
  ]);
  const meter = (name: string, at: PropertyKey[], need?: MeterNeed): void => {
    const m = meters.get(name);
    if (m === undefined) {
      addIssue(at, `names no meter '${name}'`);
      return;
    }
    if (need === "gauge" && m.aggregation !== "last") {
      addIssue(at, `'${name}' is not a gauge (a meter with aggregation: last)`);
    }
    if ((need === "cost" || need === "savings") && m.cost_per_unit === undefined) {
      addIssue(at, `meter '${name}' has no cost_per_unit`);
    }
    if ((need === "benchmark" || need === "savings") && m.benchmark_cost_per_unit === undefined) {
      addIssue(at, `meter '${name}' has no benchmark_cost_per_unit`);
    }
    if (need === "credits" && file.credit_costs[name] === undefined) {
      addIssue(at, `meter '${name}' has no credit cost (credit_costs)`);
    }
  };
  const list = (value: MeterList, at: PropertyKey[], need?: MeterNeed): void => {
    if (typeof value === "string") {
      meter(value, at, need);
      return;
    }
    value.forEach((name, i) => {
      meter(name, [...at, i], need);
    });
  };
  const walk = (node: UsageViewFileNode, at: PropertyKey[]): void => {
    const k = keyed(node);
    if (k.keyword === undefined) {
      for (const [name, child] of Object.entries(k.value)) {
        walk(child, [...at, name]);
      }
      return;
    }
    const here = [...at, k.keyword];
    switch (k.keyword) {
      case "per_project":
        walk(k.value, here);
        return;
      case "history":
        meter(k.value.meter, [...here, "meter"], "gauge");
        return;
      case "meter":
      case "meters":
        list(k.value, here);
        return;
      case "gauge":
        meter(k.value, here, "gauge");
        return;
      case "credits":
        list(k.value, here, "credits");
        return;
      case "cost":
        list(k.value, here, "cost");
        return;
      case "benchmark_cost":
        list(k.value, here, "benchmark");
        return;
      case "savings":
        list(k.value, here, "savings");
        return;
      case "quota_limit":
      case "quota_used":
        if (!quotas.has(k.value)) {
          addIssue(here, `names no quota '${k.value}' (neither a plan's, a meter's nor one Orgplane counts)`);
        }
        return;
      case "rate_7d":
        list(k.value.success, [...here, "success"]);
        list(k.value.total, [...here, "total"]);
        return;
      default:
        return;
    }
  };
  for (const [name, node] of Object.entries(fields)) {
    walk(node, ["usage_view", name]);
  }
}

/** The catalog fields the view's references are checked against, as zod has parsed them. */
type CatalogFileInput = {
  meters: z.output<typeof MeterSchema>[];
  credit_costs: Record<string, string>;
  plans: { quotas: Record<string, number | null> }[];
};

function duplicates(keys: readonly string[]): string[] {
  return keys.filter((k, i) => keys.indexOf(k) !== i);
}

export const CatalogFileSchema = z
  .strictObject({
    key_prefix: z
      .string({ error: "must be a string" })
      .regex(/^[a-z0-9]{1,16}$/, { error: "must be 1–16 lower-case letters or digits" })
      .nullable()
      .default(null)
      .describe("The organization API key prefix this product uses (informational; KEY_PREFIX sets it)"),
    rate_limit_categories: z.array(CategorySchema).max(32).default([]),
    meters: z.array(MeterSchema).max(64).default([]),
    credit_costs: z.record(key, decimal).default({}).describe("Credits per unit of each meter"),
    usage_currency: z
      .string({ error: "must be a string" })
      .regex(/^[a-z]{3}$/, { error: "must be a lower-case ISO 4217 code such as usd" })
      .default("usd")
      .describe("The currency of the meters' cost_per_unit"),
    plans: z.array(PlanSchema).min(1, { error: "must list at least one plan" }).max(100),
    credit_price: z
      .strictObject({
        amount: decimal
          .refine((v) => /[1-9]/.test(v), { error: "must be greater than 0" })
          .describe("Price of one credit in major units, e.g. 0.002"),
        currency: z
          .string({ error: "must be a string" })
          .regex(/^[a-z]{3}$/, { error: "must be a lower-case ISO 4217 code such as usd" }),
      })
      .optional()
      .describe(
        "What one credit costs; lets organizations whose currency it is set spending limits in currency",
      ),
    default_plan: key.describe("The plan a new organization starts on"),
    fallback_plan: key.describe("The plan an organization falls back to when a cancellation takes effect"),
    usage_view: UsageViewSchema.optional(),
  })
  .superRefine((file, ctx) => {
    const categories = file.rate_limit_categories.map((c) => c.key);
    const meters = file.meters.map((m) => m.key);
    const plans = file.plans.map((p) => p.key);
    for (const [list, keys] of [
      ["rate_limit_categories", categories],
      ["meters", meters],
      ["plans", plans],
    ] as const) {
      for (const dup of new Set(duplicates(keys))) {
        const index = keys.lastIndexOf(dup);
        ctx.addIssue({ code: "custom", path: [list, index, "key"], message: `'${dup}' is used twice` });
      }
    }
    for (const meter of Object.keys(file.credit_costs)) {
      if (!meters.includes(meter)) {
        ctx.addIssue({ code: "custom", path: ["credit_costs", meter], message: `names no meter '${meter}'` });
      }
    }
    file.meters.forEach((meter, i) => {
      if (meter.quota !== undefined && ORGPLANE_COUNTED_QUOTAS.includes(meter.quota)) {
        ctx.addIssue({
          code: "custom",
          path: ["meters", i, "quota"],
          message: `'${meter.quota}' is counted by Orgplane itself; a meter cannot count against it`,
        });
      }
      if (meter.aggregation === "unique_count" && file.credit_costs[meter.key] !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["credit_costs", meter.key],
          message: "a unique_count meter has no value to price",
        });
      }
    });
    file.plans.forEach((plan, i) => {
      for (const category of Object.keys(plan.rate_limits)) {
        if (!categories.includes(category)) {
          ctx.addIssue({
            code: "custom",
            path: ["plans", i, "rate_limits", category],
            message: `names no rate-limit category '${category}'`,
          });
        }
      }
    });
    file.plans.forEach((plan, i) => {
      plan.auto_upgrade.forEach((rule, j) => {
        if (!plans.includes(rule.plan) || rule.plan === plan.key) {
          ctx.addIssue({
            code: "custom",
            path: ["plans", i, "auto_upgrade", j, "plan"],
            message: rule.plan === plan.key ? "names the plan itself" : `names no plan '${rule.plan}'`,
          });
        }
      });
    });
    for (const field of ["default_plan", "fallback_plan"] as const) {
      if (!plans.includes(file[field])) {
        ctx.addIssue({ code: "custom", path: [field], message: `names no plan '${file[field]}'` });
      }
    }
    if (file.usage_view !== undefined) {
      checkUsageViewReferences(file, file.usage_view, (path, message) =>
        ctx.addIssue({ code: "custom", path, message }),
      );
    }
  });

export type CatalogFile = z.infer<typeof CatalogFileSchema>;

export function toPlanDefinition(plan: CatalogFile["plans"][number]): PlanDefinition {
  return {
    key: plan.key,
    name: plan.name,
    tier: plan.tier,
    price:
      plan.price === null
        ? null
        : {
            amountMinor: plan.price.amount_minor,
            currency: plan.price.currency,
            interval: plan.price.interval,
          },
    trialDays: plan.trial_days,
    monthlyCredits: plan.monthly_credits,
    rateLimits: plan.rate_limits,
    quotas: plan.quotas,
    features: plan.features,
    visibility: plan.visibility,
    stripePriceId: plan.stripe_price_id,
    ...(plan.auto_upgrade.length === 0
      ? {}
      : {
          autoUpgrade: plan.auto_upgrade.map((r) => ({
            whenBalanceAtLeast: r.when_balance_at_least,
            plan: r.plan,
          })),
        }),
  };
}

/** The validated file as the domain's Catalog. */
export function toCatalog(file: CatalogFile, preset: string | null): Catalog {
  return {
    preset,
    keyPrefix: file.key_prefix,
    categories: file.rate_limit_categories.map((c) => ({ key: c.key, description: c.description ?? "" })),
    meters: file.meters.map((m) => ({
      key: m.key,
      unit: m.unit,
      description: m.description ?? "",
      aggregation: m.aggregation,
      costPerUnit: m.cost_per_unit ?? null,
      benchmarkCostPerUnit: m.benchmark_cost_per_unit ?? null,
      quota: m.quota ?? null,
    })),
    creditCosts: file.credit_costs,
    usageCurrency: file.usage_currency,
    plans: file.plans.map(toPlanDefinition),
    defaultPlan: file.default_plan,
    fallbackPlan: file.fallback_plan,
    ...(file.credit_price === undefined
      ? {}
      : { creditPrice: { amount: file.credit_price.amount, currency: file.credit_price.currency } }),
    ...(file.usage_view === undefined ? {} : { usageView: toUsageView(file.usage_view) }),
  };
}
