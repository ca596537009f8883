import type { Clock } from "../../lib/clock.ts";
import { AppError, type FieldError, notFound } from "../../lib/errors.ts";
import type { JsonValue } from "../../lib/json.ts";
import { freshOrRefreshing, singleFlight } from "../../lib/single-flight.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import type { Principal, RequestContext } from "../auth/principal.ts";
import type { CatalogService } from "../catalog/catalog.service.ts";
import type { PlanVersion } from "../catalog/catalog.types.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { SubscriptionsService } from "../subscriptions/subscriptions.service.ts";
import type { LimitDecision, RateLimiter } from "./rate-limiter.ts";
import type {
  EffectiveLimit,
  LimitSource,
  RateLimitChanges,
  RateLimitOverride,
} from "./rate-limits.types.ts";

/** Limits are requests per minute. */
export const WINDOW_SECONDS = 60;

/**
 * How long a process trusts its copy of an organization's limits (plan + overrides). One second: a PATCH
 * or a plan change made through another process is applied everywhere within a second, and a busy org
 * costs at most one read per second per process instead of one per request.
 */
const CACHE_TTL_MS = 1000;
/** Bounds the cache's memory; when full it is emptied (each entry lives a second anyway). */
const CACHE_MAX_ORGS = 10_000;

type Layers = {
  plan: Record<string, number>;
  org: Record<string, number>;
  /** Project id → that project's overrides. */
  projects: Map<string, Record<string, number>>;
};

/** An organization's limit layers and its current plan version, as cached (read once, used for a request). */
export type OrgLimits = { layers: Layers; plan: PlanVersion };

/** The outcome of taking one request from an org's bucket of a category. */
export type RateLimitOutcome = {
  category: string;
  limit: number;
  windowSeconds: number;
  decision: LimitDecision;
  /** Whole seconds until the window has fully refilled, by the service's clock. */
  resetSeconds: number;
};

function layersOf(plan: Record<string, number>, orgId: string, overrides: RateLimitOverride[]): Layers {
  const layers: Layers = { plan, org: {}, projects: new Map() };
  for (const o of overrides) {
    if (o.scopeId === orgId) {
      layers.org[o.category] = o.requestsPerMinute;
      continue;
    }
    const project = layers.projects.get(o.scopeId) ?? {};
    project[o.category] = o.requestsPerMinute;
    layers.projects.set(o.scopeId, project);
  }
  return layers;
}

/** The most specific limit of `category`: key > project > org > plan; undefined when nothing limits it. */
function resolve(
  category: string,
  layers: Layers,
  projectId: string | null,
  keyOverrides: Record<string, number> | undefined,
): EffectiveLimit | undefined {
  const candidates: [LimitSource, number | undefined][] = [
    ["key", keyOverrides?.[category]],
    ["project", projectId === null ? undefined : layers.projects.get(projectId)?.[category]],
    ["org", layers.org[category]],
    ["plan", layers.plan[category]],
  ];
  for (const [source, requestsPerMinute] of candidates) {
    if (requestsPerMinute !== undefined) {
      return { category, requestsPerMinute, source };
    }
  }
  return undefined;
}

export function rateLimited(outcome: RateLimitOutcome): AppError {
  const retryAfter = Math.max(1, Math.ceil(outcome.decision.retryAfterSeconds));
  return new AppError(
    "rate_limited",
    `The '${outcome.category}' limit of ${outcome.limit} requests per ${outcome.windowSeconds} s is reached; retry in ${retryAfter} s`,
    {
      retryAfterSeconds: retryAfter,
      details: {
        category: outcome.category,
        limit: outcome.limit,
        window_seconds: outcome.windowSeconds,
        retry_after: retryAfter,
      },
    },
  );
}

/** Seconds a client is told to wait while the limiter's store is unreachable (failure mode closed). */
export const UNAVAILABLE_RETRY_SECONDS = 1;

/** A request refused because the limiter's store cannot be reached and the failure mode is `closed`. */
export function limiterUnavailable(): AppError {
  return new AppError(
    "service_unavailable",
    "The rate limiter's store cannot be reached; requests are refused until it answers " +
      "(RATE_LIMIT_FAILURE_MODE=closed)",
    { retryAfterSeconds: UNAVAILABLE_RETRY_SECONDS },
  );
}

export function createRateLimitsService(deps: {
  db: Transactor;
  stores: Pick<Stores, "orgs" | "projects" | "rateLimitOverrides">;
  subscriptions: Pick<SubscriptionsService, "current" | "planIn">;
  catalog: Pick<CatalogService, "catalog">;
  limiter: RateLimiter;
  clock: Clock;
}) {
  const cache = new Map<string, { layers: Layers; plan: PlanVersion; expiresAt: number }>();
  /** Bumped by every invalidation, so a read that began before one does not store what it read. */
  let invalidations = 0;
  function invalidate(orgId: string | undefined): void {
    invalidations += 1;
    if (orgId === undefined) {
      cache.clear();
    } else {
      cache.delete(orgId);
    }
  }

  // The catalog is loaded once at start; the hot path asks this set, not the catalog.
  const categoryKeys = new Set(deps.catalog.catalog().categories.map((c) => c.key));
  function categories(): string[] {
    return [...categoryKeys];
  }

  /** Read through the subscription's plan version, so a plan change moves limits at once. */
  async function readLayers(orgId: string): Promise<Layers> {
    const [{ plan }, overrides] = await Promise.all([
      deps.subscriptions.current(orgId),
      deps.stores.rateLimitOverrides.listForOrg(orgId),
    ]);
    return layersOf(plan.definition.rateLimits, orgId, overrides);
  }

  /** One read per organization at a time: the requests that miss together wait for the same read. */
  const refresh = singleFlight(async (orgId): Promise<OrgLimits> => {
    const generation = invalidations;
    const [{ plan }, overrides] = await Promise.all([
      deps.subscriptions.current(orgId),
      deps.stores.rateLimitOverrides.listForOrg(orgId),
    ]);
    const entry = { layers: layersOf(plan.definition.rateLimits, orgId, overrides), plan };
    // A read that began before an invalidation may predate the change: answer it, do not keep it.
    if (generation === invalidations) {
      if (cache.size >= CACHE_MAX_ORGS) {
        cache.clear();
      }
      cache.set(orgId, { ...entry, expiresAt: deps.clock.now().getTime() + CACHE_TTL_MS });
    }
    return entry;
  });

  /**
   * The organization's limit layers and its current plan version, trusted for CACHE_TTL_MS. In its last
   * REFRESH_AHEAD_MS a read refreshes it in the background, so a busy organization's requests never wait
   * on the database; an expired copy, or none, is read first, by one read shared among the requests that
   * need it. Changes committed anywhere drop the copy at once through
   * NOTIFY (`forgetOrg`); the TTL is the bound when signals are missed.
   */
  async function cachedLimits(orgId: string): Promise<OrgLimits> {
    const hit = cache.get(orgId);
    return freshOrRefreshing(
      hit === undefined ? undefined : { value: hit, expiresAt: hit.expiresAt },
      deps.clock.now().getTime(),
      () => refresh(orgId),
    );
  }

  async function checkProject(orgId: string, projectId: string): Promise<void> {
    if ((await deps.stores.projects.find(orgId, projectId)) === undefined) {
      throw notFound("Project", projectId);
    }
  }

  function validate(principal: Principal, changes: RateLimitChanges, plan: Record<string, number>): void {
    const known = new Set(categories());
    const errors: FieldError[] = Object.keys(changes)
      .filter((category) => !known.has(category))
      .map((category) => ({
        // Both bodies that change limits carry them under `rate_limits`.
        path: `rate_limits.${category}`,
        message: `Unknown rate-limit category; the catalog has: ${[...known].join(", ")}`,
      }));
    const first = errors[0];
    if (first !== undefined) {
      throw new AppError("validation_failed", `${first.path}: ${first.message}`, { errors });
    }
    if (principal.kind === "operator") {
      return;
    }
    // An organization may lower its own limits; raising one above what its plan sells is the operator's call.
    for (const [category, rpm] of Object.entries(changes)) {
      const planLimit = plan[category];
      if (rpm !== null && planLimit !== undefined && rpm > planLimit) {
        throw new AppError(
          "forbidden",
          `Raising '${category}' above the plan's ${planLimit} requests per minute needs an operator credential`,
        );
      }
    }
  }

  /** Every catalog category's effective limit for the organization (or one of its projects). */
  async function list(orgId: string, projectId?: string): Promise<EffectiveLimit[]> {
    await loadOrg(deps.stores, orgId);
    if (projectId !== undefined) {
      await checkProject(orgId, projectId);
    }
    const layers = await readLayers(orgId);
    return categories().flatMap((category) => resolve(category, layers, projectId ?? null, undefined) ?? []);
  }

  /**
   * Inside a transaction with the organization locked (PATCH of the organization itself): set (`rpm`)
   * or remove (`null`) overrides of the organization, or of one project when `projectId` is given, and
   * write the audit event.
   */
  async function changeIn(
    stores: Stores,
    ctx: RequestContext,
    orgId: string,
    changes: RateLimitChanges,
    projectId?: string,
  ): Promise<void> {
    const plan = await deps.subscriptions.planIn(stores, orgId);
    validate(ctx.principal, changes, plan.definition.rateLimits);
    if (projectId !== undefined && (await stores.projects.findForUpdate(orgId, projectId)) === undefined) {
      throw notFound("Project", projectId);
    }
    const scopeId = projectId ?? orgId;
    const existing = (await stores.rateLimitOverrides.listForOrg(orgId)).filter((o) => o.scopeId === scopeId);
    const before: Record<string, JsonValue> = {};
    const after: Record<string, JsonValue> = {};
    const now = deps.clock.now();
    for (const [category, rpm] of Object.entries(changes)) {
      before[category] = existing.find((o) => o.category === category)?.requestsPerMinute ?? null;
      after[category] = rpm;
      if (rpm === null) {
        await stores.rateLimitOverrides.remove(orgId, scopeId, category);
      } else {
        await stores.rateLimitOverrides.upsert({
          orgId,
          scopeId,
          category,
          requestsPerMinute: rpm,
          updatedAt: now,
        });
      }
    }
    const diff = diffViews(before, after);
    if (Object.keys(diff).length > 0) {
      const target =
        projectId === undefined
          ? { action: "organization.rate_limits_updated", targetType: "organization", targetId: orgId }
          : { action: "project.rate_limits_updated", targetType: "project", targetId: projectId };
      await stores.audit.insert(auditEvent(ctx, { orgId, ...target, changes: diff }, deps.clock));
    }
    // This process sees the change at once; the others when its NOTIFY arrives, or within the cache's second.
    invalidate(orgId);
  }

  /**
   * Count `cost` requests of `category` against the organization's bucket of that category (one bucket
   * per org and category, shared by the API middleware and `POST /v1/authorize`), at the most specific
   * limit: key > project > org > plan. Undefined when the catalog or the plan does not limit `category`.
   */
  async function takeFor(
    subject: { orgId: string; projectId: string | null; keyOverrides: Record<string, number> | undefined },
    category: string,
    cost: number,
    /** The organization's limits when the caller has just read them (`currentLimits`). */
    known?: OrgLimits,
  ): Promise<RateLimitOutcome | undefined> {
    if (!categoryKeys.has(category)) {
      return undefined;
    }
    const { layers } = known ?? (await cachedLimits(subject.orgId));
    const effective = resolve(category, layers, subject.projectId, subject.keyOverrides);
    if (effective === undefined) {
      return undefined;
    }
    const decision = await deps.limiter.take({
      key: `${subject.orgId}:${category}`,
      limit: effective.requestsPerMinute,
      windowSeconds: WINDOW_SECONDS,
      cost,
    });
    const resetSeconds = Math.max(
      0,
      Math.ceil((decision.resetAt.getTime() - deps.clock.now().getTime()) / 1000),
    );
    return {
      category,
      limit: effective.requestsPerMinute,
      windowSeconds: WINDOW_SECONDS,
      decision,
      resetSeconds,
    };
  }

  return {
    list,

    changeIn,

    /** `changeIn` in a transaction of its own; answers the limits after the change. */
    async update(
      ctx: RequestContext,
      orgId: string,
      changes: RateLimitChanges,
      projectId?: string,
    ): Promise<EffectiveLimit[]> {
      await deps.db.transaction(async (stores) => {
        // Locked like every change of the organization, so a concurrent plan change is seen whole.
        await loadOrg(stores, orgId, true);
        await changeIn(stores, ctx, orgId, changes, projectId);
      });
      invalidate(orgId);
      return list(orgId, projectId);
    },

    /** Drop the cached limits and plan of `orgId` (it changed in another process). */
    forgetOrg: (orgId: string): void => invalidate(orgId),

    /** Drop every cached limit and plan. */
    forgetAll: (): void => invalidate(undefined),

    /** Whether the catalog names `category` (the hot path asks this set, not the catalog). */
    hasCategory: (category: string): boolean => categoryKeys.has(category),

    /** The organization's plan and limits from the one-second cache, to pass on to `takeFor`. */
    currentLimits: cachedLimits,

    takeFor,

    /**
     * Count one request of `category` against the principal's organization. Undefined when nothing
     * limits it: the operator, a user outside any organization, or a category the catalog or plan lacks.
     */
    async take(principal: Principal, category: string): Promise<RateLimitOutcome | undefined> {
      if (principal.kind === "operator" || principal.kind === "user") {
        return undefined;
      }
      return takeFor(
        {
          orgId: principal.orgId,
          projectId: principal.projectId,
          keyOverrides: principal.kind === "api_key" ? principal.rateLimitOverrides : undefined,
        },
        category,
        1,
      );
    },
  };
}

export type RateLimitsService = ReturnType<typeof createRateLimitsService>;
