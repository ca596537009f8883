import { z } from "@hono/zod-openapi";
import type { ApiKeyWithOrg } from "../../domain/api-keys/api-keys.types.ts";
import { ORG_SCOPES, type Scope } from "../../domain/auth/principal.ts";
import type { AuthorizeDecision, AuthorizeInput } from "../../domain/authorize/authorize.service.ts";
import type { PlanVersion } from "../../domain/catalog/catalog.types.ts";
import {
  type RateLimitOutcome,
  UNAVAILABLE_RETRY_SECONDS,
} from "../../domain/rate-limits/rate-limits.service.ts";
import { DECIMAL_PATTERN } from "../../lib/decimal.ts";
import { isoString } from "../../lib/iso-time.ts";
import { rateLimitHeaders } from "../middleware/rate-limit.ts";
import { ScopeSchema } from "./api-key.ts";
import { storableText } from "./common.ts";

/** One call can count as many requests as a batch endpoint of the product serves at once. */
const MAX_COST = 1_000_000;
const MAX_KEY_LENGTH = 256;
const CATEGORY_PATTERN = /^[a-z][a-z0-9_-]{0,31}$/;
const BODY_FIELDS = new Set(["key", "category", "cost", "scope", "credits"]);
const SCOPES: ReadonlySet<string> = new Set(ORG_SCOPES);

export const AuthorizeBody = z
  .strictObject({
    key: storableText(z.string().trim().min(1).max(MAX_KEY_LENGTH)).openapi({
      description: "The end customer's API key, as presented to the product",
    }),
    category: z
      .string()
      .regex(CATEGORY_PATTERN, "a category: lower-case letter, then up to 31 of a-z 0-9 _ -")
      .openapi({ description: "A rate-limit category of the catalog (e.g. `search`)", example: "search" }),
    cost: z
      .number()
      .int()
      .min(1)
      .max(MAX_COST)
      .default(1)
      .openapi({ description: "Requests this call counts as (default 1)", example: 1 }),
    scope: ScopeSchema.optional().openapi({ description: "A scope the key must hold" }),
    credits: z
      .string()
      .regex(DECIMAL_PATTERN, "must be a decimal string such as `12.5`")
      .optional()
      .openapi({
        description:
          "Credits the request costs, as an exact decimal string: debited from the organization's ledger " +
          "(consumption order and overdraft: docs/credits.md) once every other check has passed",
        example: "2.5",
      }),
  })
  .openapi("Authorize");

const REASONS = [
  "key_not_found",
  "key_expired",
  "key_revoked",
  "organization_suspended",
  "rate_limited",
  "rate_limiter_unavailable",
  "insufficient_credits",
  "spending_limit_reached",
  "scope_missing",
] as const;

export const AuthorizeResultSchema = z
  .object({
    allowed: z.boolean(),
    reason: z
      .enum(REASONS)
      .nullable()
      .openapi({
        description:
          "null when allowed. `rate_limiter_unavailable`: Redis could not be reached and " +
          "RATE_LIMIT_FAILURE_MODE is `closed` (headers then carry Retry-After)",
      }),
    org_id: z.string().nullable(),
    project_id: z.string().nullable(),
    key_id: z.string().nullable(),
    scopes: z.array(z.string()).nullable(),
    plan: z
      .object({ key: z.string(), version: z.number().int(), tier: z.string() })
      .nullable()
      .openapi({ description: "The organization's current plan; null when the key was refused" }),
    limit: z
      .object({
        category: z.string(),
        limit: z.number().int(),
        remaining: z.number().int(),
        reset_at: z.string(),
      })
      .nullable()
      .openapi({
        description:
          "The category's limit after this call; null when the request was not counted (refused " +
          "before the limit), the plan does not limit the category, or the limiter's store could not be " +
          "reached (RATE_LIMIT_FAILURE_MODE decided: `open` allows, `closed` refuses with reason " +
          "`rate_limiter_unavailable`)",
      }),
    credits: z
      .object({
        required: z.string(),
        debited: z.boolean(),
        balance: z.string().nullable(),
        transaction_id: z.string().nullable(),
      })
      .nullable()
      .openapi({
        description:
          "Set when `credits` was given. `debited`: the credits were taken from the organization's ledger " +
          "(one transaction, committed before this answer; `transaction_id` names its entry). `balance`: " +
          "after the debit, or when refused for insufficient_credits / spending_limit_reached; null when the " +
          "request was refused before the ledger was consulted. Credits `0` are allowed and not debited",
      }),
    headers: z.record(z.string(), z.string()).openapi({
      description:
        "Rate-limit headers to forward to the end user: RateLimit-Policy, RateLimit, X-RateLimit-Limit, " +
        "X-RateLimit-Remaining, X-RateLimit-Reset, and Retry-After when rate limited. Empty when the " +
        "request was not counted",
    }),
  })
  .openapi("AuthorizeResult");

/** The validated body as the service's input. */
export function authorizeInput(body: z.infer<typeof AuthorizeBody>): AuthorizeInput {
  return {
    key: body.key,
    category: body.category,
    cost: body.cost,
    scope: body.scope,
    credits: body.credits,
  };
}

/** The decision's limit outcome if the request was counted: not when the limiter's store was unreachable. */
function countedLimit(d: AuthorizeDecision): RateLimitOutcome | undefined {
  return d.limit?.decision.unavailable === true ? undefined : d.limit;
}

/**
 * The limit a decision shows (none when the request was not counted) and the headers to forward, in
 * order. When the limiter's store could not be reached nothing was counted, so there is no limit to
 * show; the closed failure mode's refusal still tells the end user when to retry.
 */
function forwarded(d: AuthorizeDecision): {
  counted: RateLimitOutcome | undefined;
  headers: [string, string][];
} {
  const counted = countedLimit(d);
  if (counted === undefined) {
    const refused = d.limit !== undefined && !d.limit.decision.allowed;
    return { counted, headers: refused ? [["Retry-After", String(UNAVAILABLE_RETRY_SECONDS)]] : [] };
  }
  const headers = rateLimitHeaders(counted);
  if (!counted.decision.allowed) {
    headers.push(["Retry-After", String(Math.max(1, Math.ceil(counted.decision.retryAfterSeconds)))]);
  }
  return { counted, headers };
}

export function toAuthorizeResult(d: AuthorizeDecision): z.infer<typeof AuthorizeResultSchema> {
  const { counted, headers } = forwarded(d);
  return {
    allowed: d.allowed,
    reason: d.reason,
    org_id: d.key?.orgId ?? null,
    project_id: d.key?.projectId ?? null,
    key_id: d.key?.id ?? null,
    scopes: d.key?.scopes ?? null,
    plan:
      d.plan === undefined
        ? null
        : { key: d.plan.key, version: d.plan.version, tier: d.plan.definition.tier },
    limit:
      counted === undefined
        ? null
        : {
            category: counted.category,
            limit: counted.limit,
            remaining: counted.decision.remaining,
            reset_at: counted.decision.resetAt.toISOString(),
          },
    credits:
      d.credits === undefined
        ? null
        : {
            required: d.credits.required,
            debited: d.credits.debited,
            balance: d.credits.balance,
            transaction_id: d.credits.entryId,
          },
    headers: Object.fromEntries(headers),
  };
}

/**
 * The answer's fields that come from the key alone, as JSON (ending in a comma), per key object: the key
 * cache hands out the same object until the key or its organization changes, and then a new one, so a
 * key's fields are written once rather than on every decision. Objects read from the store are never
 * modified in place.
 */
const keyFieldsJson = new WeakMap<ApiKeyWithOrg, string>();
function keyFields(key: ApiKeyWithOrg | undefined): string {
  if (key === undefined) {
    return `"org_id":null,"project_id":null,"key_id":null,"scopes":null,`;
  }
  let json = keyFieldsJson.get(key);
  if (json === undefined) {
    const q = JSON.stringify;
    json =
      `"org_id":${q(key.orgId)},"project_id":${q(key.projectId)},"key_id":${q(key.id)},` +
      `"scopes":${q(key.scopes)},`;
    keyFieldsJson.set(key, json);
  }
  return json;
}

/** The plan's field, per plan version object (plan versions are cached and never modified either). */
const planJson = new WeakMap<PlanVersion, string>();
function planField(plan: PlanVersion | undefined): string {
  if (plan === undefined) {
    return "null";
  }
  let json = planJson.get(plan);
  if (json === undefined) {
    const q = JSON.stringify;
    json = `{"key":${q(plan.key)},"version":${plan.version},"tier":${q(plan.definition.tier)}}`;
    planJson.set(plan, json);
  }
  return json;
}

/**
 * The parts of a counted decision's JSON that depend only on its category, limit and window, escaped once:
 * between them go the remaining count and the reset times. Together they spell the `limit` object and the
 * five rate-limit headers exactly as `rateLimitHeaders` names them, in its order.
 */
type LimitParts = {
  /** `{"category":…,"limit":…,"remaining":` */
  limitHead: string;
  /** `"RateLimit-Policy":…,"RateLimit":"\"<category>\";r=` */
  headersHead: string;
  /** `","X-RateLimit-Limit":"<limit>","X-RateLimit-Remaining":"` */
  afterReset: string;
};
const limitParts = new Map<string, LimitParts>();
/** Categories × limits in use; beyond this the parts are simply built again. */
const LIMIT_PARTS_MAX = 1000;

/** A JSON string's text without its quotes: escaped pieces concatenate into one escaped string. */
function escaped(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

function partsOf(category: string, limit: number, windowSeconds: number): LimitParts {
  const id = `${category}\n${limit}\n${windowSeconds}`;
  let parts = limitParts.get(id);
  if (parts === undefined) {
    const q = JSON.stringify;
    parts = {
      limitHead: `{"category":${q(category)},"limit":${limit},"remaining":`,
      headersHead:
        `"RateLimit-Policy":${q(`"${category}";q=${limit};w=${windowSeconds}`)},` +
        `"RateLimit":"${escaped(`"${category}";r=`)}`,
      afterReset: `","X-RateLimit-Limit":"${limit}","X-RateLimit-Remaining":"`,
    };
    if (limitParts.size >= LIMIT_PARTS_MAX) {
      limitParts.clear();
    }
    limitParts.set(id, parts);
  }
  return parts;
}

/** JSON text of the reason codes, which are few and fixed. */
const reasonJson = new Map<string | null, string>();
function reasonField(reason: string | null): string {
  let json = reasonJson.get(reason);
  if (json === undefined) {
    json = JSON.stringify(reason);
    reasonJson.set(reason, json);
  }
  return json;
}

/**
 * The same text as `JSON.stringify(toAuthorizeResult(d))`, written without the intermediate objects: the
 * fast path answers every authorize with it (src/http/authorize-fast-path.ts). Strings go through
 * JSON.stringify, so escaping is the standard one, and what depends only on the key, the plan or the
 * limit is escaped once per object or limit; test/authorize-result.test.ts holds the two equal.
 */
export function authorizeResultJson(d: AuthorizeDecision): string {
  const q = JSON.stringify;
  const counted = countedLimit(d);
  let limit: string;
  let headers: string;
  if (counted === undefined) {
    limit = "null";
    headers = forwarded(d)
      .headers.map(([name, value]) => `${q(name)}:${q(value)}`)
      .join(",");
  } else {
    const { decision } = counted;
    const parts = partsOf(counted.category, counted.limit, counted.windowSeconds);
    limit = `${parts.limitHead}${decision.remaining},"reset_at":"${isoString(decision.resetAt)}"}`;
    headers =
      `${parts.headersHead}${decision.remaining};t=${counted.resetSeconds}${parts.afterReset}` +
      `${decision.remaining}","X-RateLimit-Reset":"${Math.ceil(decision.resetAt.getTime() / 1000)}"` +
      (decision.allowed ? "" : `,"Retry-After":"${Math.max(1, Math.ceil(decision.retryAfterSeconds))}"`);
  }
  const credits =
    d.credits === undefined
      ? "null"
      : `{"required":${q(d.credits.required)},"debited":${d.credits.debited},"balance":${q(d.credits.balance)},` +
        `"transaction_id":${q(d.credits.entryId)}}`;
  return (
    `{"allowed":${d.allowed},"reason":${reasonField(d.reason)},${keyFields(d.key)}` +
    `"plan":${planField(d.plan)},"limit":${limit},"credits":${credits},"headers":{${headers}}}`
  );
}

/**
 * The service's input from a parsed body that `AuthorizeBody` would take unchanged (no whitespace to trim,
 * every field plainly valid), checked without building zod's result; undefined for anything else, which
 * then goes through `AuthorizeBody` for its exact answer or errors. Held equal to it by
 * test/authorize-result.test.ts.
 */
export function plainAuthorizeInput(json: unknown): AuthorizeInput | undefined {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return undefined;
  }
  for (const field of Object.keys(json)) {
    if (!BODY_FIELDS.has(field)) {
      return undefined;
    }
  }
  const { key, category, cost, scope, credits } = json as Record<string, unknown>;
  if (
    typeof key !== "string" ||
    key.length === 0 ||
    key.length > MAX_KEY_LENGTH ||
    key.trim() !== key ||
    key.includes("\u0000") ||
    typeof category !== "string" ||
    !CATEGORY_PATTERN.test(category) ||
    (cost !== undefined &&
      (typeof cost !== "number" || !Number.isInteger(cost) || cost < 1 || cost > MAX_COST)) ||
    (scope !== undefined && (typeof scope !== "string" || !SCOPES.has(scope))) ||
    (credits !== undefined && (typeof credits !== "string" || !DECIMAL_PATTERN.test(credits)))
  ) {
    return undefined;
  }
  return {
    key,
    category,
    cost: cost ?? 1,
    scope: scope as Scope | undefined,
    credits,
  };
}
