import { parseKey } from "../../lib/api-key-format.ts";
import type { Clock } from "../../lib/clock.ts";
import { compareDecimal } from "../../lib/decimal.ts";
import { AppError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import type { KeyPrefixes } from "../api-keys/api-keys.service.ts";
import type { ApiKeysStore } from "../api-keys/api-keys.store.ts";
import type { ApiKeyWithOrg } from "../api-keys/api-keys.types.ts";
import { keyRefusal } from "../api-keys/key-status.ts";
import type { KeyUsageTracker } from "../api-keys/key-usage.ts";
import type { Scope } from "../auth/principal.ts";
import type { PlanVersion } from "../catalog/catalog.types.ts";
import type { CreditsService } from "../credits/credits.service.ts";
import type { RateLimitOutcome, RateLimitsService } from "../rate-limits/rate-limits.service.ts";
import type { SpendingLimitsService } from "../spending-limits/spending-limits.service.ts";
import { createKeyCache } from "./key-cache.ts";
import type { OrgChangeSource } from "./org-changes.ts";

export type AuthorizeReason =
  | "key_not_found"
  | "key_expired"
  | "key_revoked"
  | "organization_suspended"
  | "rate_limited"
  | "rate_limiter_unavailable"
  | "insufficient_credits"
  | "spending_limit_reached"
  | "scope_missing";

export type AuthorizeInput = {
  /** The end customer's API key, as presented to the product. */
  key: string;
  /** A rate-limit category of the catalog. */
  category: string;
  /** Requests this call counts as. */
  cost: number;
  /** A scope the key must hold. */
  scope: Scope | undefined;
  /** Exact decimal string: credits the request costs, debited from the organization's ledger. */
  credits: string | undefined;
};

/** The credits part of a decision: what was asked, whether it was debited, the balance after. */
export type AuthorizeCredits = {
  required: string;
  debited: boolean;
  /** The balance after the debit, or when refused; null when the ledger was not consulted. */
  balance: string | null;
  /** The ledger entry of the debit. */
  entryId: string | null;
};

/**
 * The decision, as data: a denial is not an error. `key` is set once the key is found; `plan` once it is
 * judged good; `limit` once the request was counted (undefined also when the plan does not limit the
 * category); `credits` when credits were asked for.
 */
export type AuthorizeDecision = {
  allowed: boolean;
  reason: AuthorizeReason | null;
  key: ApiKeyWithOrg | undefined;
  plan: PlanVersion | undefined;
  limit: RateLimitOutcome | undefined;
  credits: AuthorizeCredits | undefined;
};

/**
 * `POST /v1/authorize`: verify a key, check its scope and credits, and count the request against the
 * organization's limit of the category (the same buckets as Orgplane's own API). Checks run from the
 * cheapest refusal to the limit, so a refused request never uses up the organization's limit. No
 * database write: the key's last use is recorded in memory and flushed in batches.
 *
 * With `orgChanges`, found keys are cached in process (key-cache.ts) so a repeat authorize reads no
 * database, and every change committed by any process drops the organization's cached keys and limits
 * within the time a NOTIFY takes to arrive; `start` must then be called. Without it, every call reads
 * the key.
 */
export function createAuthorizeService(deps: {
  keys: Pick<ApiKeysStore, "findByHash">;
  rateLimits: Pick<
    RateLimitsService,
    "hasCategory" | "currentLimits" | "takeFor" | "forgetOrg" | "forgetAll"
  >;
  keyUsage: Pick<KeyUsageTracker, "record">;
  credits: Pick<CreditsService, "debit">;
  spending: Pick<SpendingLimitsService, "isBlocked" | "checkSpending">;
  /** Told when the alert check after a committed debit fails: the debit stands, the next one re-checks. */
  onAlertCheckError?: (err: unknown) => void;
  prefixes: KeyPrefixes;
  clock: Clock;
  orgChanges?: OrgChangeSource | undefined;
}) {
  const { orgChanges } = deps;
  const cache =
    orgChanges === undefined
      ? undefined
      : createKeyCache({ store: deps.keys, clock: deps.clock, trusted: () => orgChanges.listening() });
  const keys = cache ?? deps.keys;

  const denied = (
    reason: AuthorizeReason,
    rest: Partial<Omit<AuthorizeDecision, "allowed" | "reason">> = {},
  ): AuthorizeDecision => ({
    allowed: false,
    reason,
    key: rest.key,
    plan: rest.plan,
    limit: rest.limit,
    credits: rest.credits,
  });

  return {
    async authorize(input: AuthorizeInput): Promise<AuthorizeDecision> {
      if (!deps.rateLimits.hasCategory(input.category)) {
        throw new AppError("validation_failed", "category: Unknown rate-limit category", {
          errors: [{ path: "category", message: "Unknown rate-limit category" }],
        });
      }
      const hash = sha256Hex(input.key);
      // A cached key was checked when it was cached; otherwise the checksum refuses typos and random
      // strings before any database read.
      let key = cache?.peek(hash);
      if (key === undefined) {
        const parsed = parseKey(input.key);
        if (parsed === undefined || parsed.prefix !== deps.prefixes.orgKeyPrefix) {
          return denied("key_not_found");
        }
        key = await keys.findByHash(hash);
      }
      if (key === undefined) {
        return denied("key_not_found");
      }
      const refusal = keyRefusal(key, deps.clock.now());
      if (refusal === "organization_deleted" || refusal === "project_deleted") {
        return denied("key_not_found");
      }
      if (refusal !== undefined) {
        return denied(refusal, { key });
      }
      if (key.orgStatus === "suspended") {
        return denied("organization_suspended", { key });
      }
      deps.keyUsage.record(key.id);
      const limits = await deps.rateLimits.currentLimits(key.orgId);
      const plan = limits.plan;
      if (input.scope !== undefined && !key.scopes.includes(input.scope)) {
        return denied("scope_missing", { key, plan });
      }
      // The hard limit (action `block`) reached: refused before counting, whether or not credits are asked.
      if (await deps.spending.isBlocked(key.orgId)) {
        return denied("spending_limit_reached", { key, plan });
      }
      const limit = await deps.rateLimits.takeFor(
        { orgId: key.orgId, projectId: key.projectId, keyOverrides: key.rateLimitOverrides },
        input.category,
        input.cost,
        limits,
      );
      if (limit !== undefined && !limit.decision.allowed) {
        // The store could not be reached and the failure mode is closed: nothing was counted.
        const reason = limit.decision.unavailable === true ? "rate_limiter_unavailable" : "rate_limited";
        return denied(reason, { key, plan, limit });
      }
      // Last, so a request refused for any other reason never spends credits. The debit is one
      // transaction, exact across processes and committed before the answer (docs/credits.md).
      if (input.credits === undefined || compareDecimal(input.credits, "0") === 0) {
        const credits =
          input.credits === undefined
            ? undefined
            : { required: input.credits, debited: false, balance: null, entryId: null };
        return { allowed: true, reason: null, key, plan, limit, credits };
      }
      const debit = await deps.credits.debit(key.orgId, input.credits, { source: "authorize" });
      if (!debit.ok) {
        const credits = { required: input.credits, debited: false, balance: debit.balance, entryId: null };
        return denied(debit.reason, { key, plan, limit, credits });
      }
      try {
        await deps.spending.checkSpending(key.orgId, {
          periodStart: debit.periodStart,
          periodUsage: debit.periodUsed,
          allocation: debit.periodAllocation,
          balance: debit.balance,
        });
      } catch (err) {
        deps.onAlertCheckError?.(err);
      }
      const credits = {
        required: input.credits,
        debited: true,
        balance: debit.balance,
        entryId: debit.entryId,
      };
      return { allowed: true, reason: null, key, plan, limit, credits };
    },

    /** Listen for organization changes (when `orgChanges` was given); resolves once the first attempt ends. */
    async start(): Promise<void> {
      await orgChanges?.start({
        changed(orgId) {
          cache?.forgetOrg(orgId);
          deps.rateLimits.forgetOrg(orgId);
        },
        reset() {
          cache?.clear();
          deps.rateLimits.forgetAll();
        },
      });
    },

    stop: async (): Promise<void> => orgChanges?.stop(),

    /** Keys held in the cache (0 without `orgChanges`). */
    cachedKeys: (): number => cache?.size() ?? 0,
  };
}

export type AuthorizeService = ReturnType<typeof createAuthorizeService>;
