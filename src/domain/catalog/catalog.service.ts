import { AppError, notFound } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { isId } from "../../lib/ids.ts";
import { canonicalJson } from "../../lib/json.ts";
import type { Principal } from "../auth/principal.ts";
import { CATALOG_KEY_PATTERN } from "./catalog.schema.ts";
import type { PlanVersionsStore } from "./catalog.store.ts";
import type { Catalog, PlanDefinition, PlanVersion } from "./catalog.types.ts";

/** SHA-256 of the definition with keys sorted: the same plan written in another key order is the same version. */
export function planContentHash(definition: PlanDefinition): string {
  return sha256Hex(canonicalJson(definition));
}

/**
 * Make plan_versions match the catalog (run at start-up under the migration lock, in one transaction): an
 * edited plan gets a new current version, an unchanged one keeps its version, a removed one stops being
 * current. Subscriptions point at versions, so nobody moves.
 */
export function syncCatalog(store: PlanVersionsStore, catalog: Catalog, at: Date): Promise<PlanVersion[]> {
  const hashes = new Map(catalog.plans.map((p) => [p.key, planContentHash(p)]));
  return store.sync(catalog.plans, hashes, at);
}

export type ListPlansOptions = { allVersions: boolean };

export type CatalogService = {
  /** The catalog loaded at start (orgplane.yaml or a preset). */
  catalog(): Catalog;
  /** The current version of a plan in the catalog; 404 when no such plan is current. */
  currentPlan(key: string): Promise<PlanVersion>;
  /** Any stored version, current or not (subscriptions keep theirs). 404 when unknown. */
  planVersion(id: string): Promise<PlanVersion>;
  /** What a new organization starts on. */
  defaultPlan(): Promise<PlanVersion>;
  /** What an organization falls back to when a cancellation takes effect. */
  fallbackPlan(): Promise<PlanVersion>;
  /**
   * Plans the principal may see: org credentials see current public plans; the operator also sees private
   * plans and, with `allVersions`, every version.
   */
  listPlans(principal: Principal, options: ListPlansOptions): Promise<PlanVersion[]>;
  /**
   * One plan by key (its current version, or `version`) or by version id (`pln_…`), with the same visibility
   * as listPlans: a private plan does not exist for an organization's credential (404), and a version that
   * is not current is for the operator (403).
   */
  getPlan(principal: Principal, keyOrId: string, version: number | undefined): Promise<PlanVersion>;
};

export type CatalogDeps = { store: PlanVersionsStore; catalog: Catalog };

/** Plan versions kept in memory at most (a catalog has a handful; the bound only guards a runaway). */
const MAX_CACHED_VERSIONS = 1000;
const VERSION_TTL_MS = 5000;

export function createCatalogService(deps: CatalogDeps): CatalogService {
  const { store, catalog } = deps;
  const order = new Map(catalog.plans.map((p, i) => [p.key, i]));
  // Catalog order first (free before pro…), then plans no longer in the file by key; newest version first.
  const byCatalogOrder = (a: PlanVersion, b: PlanVersion) =>
    (order.get(a.key) ?? order.size) - (order.get(b.key) ?? order.size) ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) ||
    b.version - a.version;

  // A version's definition never changes once written (an edited plan is a new version); only its
  // `isCurrent` may, when another process syncs a newer catalog: kept a few seconds.
  const versions = new Map<string, { plan: PlanVersion; until: number }>();
  let fallback: { plan: PlanVersion; until: number } | undefined;

  async function currentPlan(key: string): Promise<PlanVersion> {
    // A string no plan key can be is unknown without a database read (and never a 400 for odd bytes).
    const plan = CATALOG_KEY_PATTERN.test(key) ? await store.findCurrentByKey(key) : undefined;
    if (plan === undefined) {
      throw notFound("Plan", key);
    }
    return plan;
  }

  return {
    catalog: () => catalog,
    currentPlan,
    async planVersion(id) {
      const now = Date.now();
      const cached = versions.get(id);
      if (cached !== undefined && cached.until > now) {
        return cached.plan;
      }
      const plan = isId("pln", id) ? await store.findVersion(id) : undefined;
      if (plan === undefined) {
        throw notFound("Plan version", id);
      }
      if (versions.size >= MAX_CACHED_VERSIONS) {
        versions.clear();
      }
      versions.set(id, { plan, until: now + VERSION_TTL_MS });
      return plan;
    },
    defaultPlan: () => currentPlan(catalog.defaultPlan),
    async fallbackPlan() {
      // Read on every subscription read (it decides what a due cancellation falls back to); which version
      // is current changes only when a process syncs a newer catalog, so a few seconds' staleness is fine.
      const now = Date.now();
      if (fallback !== undefined && fallback.until > now) {
        return fallback.plan;
      }
      const plan = await currentPlan(catalog.fallbackPlan);
      fallback = { plan, until: now + VERSION_TTL_MS };
      return plan;
    },

    async listPlans(principal, options) {
      const operator = principal.kind === "operator";
      if (options.allVersions && !operator) {
        throw new AppError("operator_only", "Listing every plan version needs an operator credential");
      }
      const plans = options.allVersions ? await store.listAllVersions() : await store.listCurrent();
      return plans.filter((p) => operator || p.definition.visibility === "public").sort(byCatalogOrder);
    },

    async getPlan(principal, keyOrId, requestedVersion) {
      const operator = principal.kind === "operator";
      let key = keyOrId;
      let version = requestedVersion;
      if (isId("pln", keyOrId)) {
        const byId = await store.findVersion(keyOrId);
        if (byId === undefined || (version !== undefined && version !== byId.version)) {
          throw notFound("Plan", keyOrId);
        }
        key = byId.key;
        version = byId.version;
      } else if (!CATALOG_KEY_PATTERN.test(keyOrId)) {
        throw notFound("Plan", keyOrId);
      }
      const current = await store.findCurrentByKey(key);
      // A private plan does not exist for an organization's credential.
      if (!operator && (current === undefined || current.definition.visibility !== "public")) {
        throw notFound("Plan", keyOrId);
      }
      if (version === undefined || version === current?.version) {
        if (current === undefined) {
          throw notFound("Plan", key);
        }
        return current;
      }
      if (!operator) {
        throw new AppError(
          "operator_only",
          "Reading a plan version that is not current needs an operator credential",
        );
      }
      const found = (await store.listAllVersions()).find((p) => p.key === key && p.version === version);
      if (found === undefined) {
        throw new AppError("not_found", `Plan '${key}' has no version ${version}`);
      }
      return found;
    },
  };
}
