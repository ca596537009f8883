import { generateKey, type KeyEnvironment, keyDisplay, parseKey } from "../../lib/api-key-format.ts";
import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { isId, newId } from "../../lib/ids.ts";
import type { JsonObject, JsonValue } from "../../lib/json.ts";
import type { AuditChanges } from "../audit/audit.types.ts";
import { auditEvent, diffViews } from "../audit/audit-event.ts";
import {
  ORG_SCOPES,
  PROJECT_KEY_SCOPES,
  type Principal,
  type RequestContext,
  type Scope,
} from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import { loadProject, visibleProjectIds } from "../projects/projects.service.ts";
import type { QuotaGuard } from "../quotas/quotas.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import { apiKeySummary, emitEvent } from "../webhooks/event-data.ts";
import type { ApiKey, ApiKeyWithOrg, OperatorKey } from "./api-keys.types.ts";
import { type KeyRefusal, keyRefusal } from "./key-status.ts";
import type { KeyUsageTracker } from "./key-usage.ts";

export type KeyPrefixes = { orgKeyPrefix: string; operatorKeyPrefix: string };

export type CreateApiKeyInput = {
  name: string;
  environment: KeyEnvironment | undefined;
  scopes: Scope[] | undefined;
  expiresAt: Date | null | undefined;
  description?: string | null | undefined;
  /** A project-scoped key: it acts only inside this (live) project of the organization. */
  projectId?: string | null | undefined;
  rateLimitOverrides?: Record<string, number> | undefined;
  metadata?: JsonObject | undefined;
};

export type UpdateApiKeyInput = {
  name?: string;
  description?: string | null;
  scopes?: Scope[];
  expiresAt?: Date | null;
  /** Replaces the whole map. */
  rateLimitOverrides?: Record<string, number>;
  /** Replaces the whole object. */
  metadata?: JsonObject;
};

export type ListApiKeysInput = { limit: number; cursor: string | undefined; includeRevoked: boolean };

/** What `POST /v1/keys/verify` answers: the key's identity, or why it is refused. */
export type VerifyResult =
  | { valid: true; key: ApiKeyWithOrg }
  | { valid: false; reason: "malformed" | "unknown" | KeyRefusal | "organization_suspended" };

/** Rotation keeps the previous key working for at most a week: long enough for any deploy. */
export const MAX_ROTATION_OVERLAP_SECONDS = 7 * 24 * 60 * 60;

/** `api_key.expiring` is emitted once a key expires within this long: a week to rotate it, as for invitations. */
export const EXPIRING_WINDOW_MS = 7 * 24 * 60 * 60 * 1000;
/** Keys announced per sweep transaction: short transactions, few row locks held at once. */
const EXPIRING_SWEEP_BATCH = 100;

/** The client-visible, non-secret state of a key, in API field names, for audit diffs. */
function auditView(key: ApiKey): Record<string, JsonValue> {
  return {
    name: key.name,
    description: key.description,
    project_id: key.projectId,
    environment: key.environment,
    scopes: key.scopes,
    expires_at: key.expiresAt?.toISOString() ?? null,
    rate_limit_overrides: key.rateLimitOverrides,
    metadata: key.metadata,
    rotated_from: key.rotatedFrom,
  };
}

function diff(before: ApiKey | undefined, after: ApiKey): AuditChanges {
  return diffViews(before === undefined ? undefined : auditView(before), auditView(after));
}

function normaliseScopes(scopes: readonly Scope[]): Scope[] {
  return [...new Set(scopes)].sort();
}

/** Nobody grants a key scopes they do not hold themselves (the operator holds every scope). */
function requireWithinCaller(principal: Principal, scopes: readonly Scope[]): void {
  if (principal.kind !== "api_key" && principal.kind !== "member") {
    return;
  }
  const missing = scopes.filter((s) => !principal.scopes.includes(s));
  if (missing.length > 0) {
    throw new AppError(
      "insufficient_scope",
      `A key cannot grant scopes it does not hold: ${missing.map((s) => `'${s}'`).join(", ")}`,
    );
  }
}

/** A project key acts inside its project only: organization-management scopes are refused. */
function requireProjectKeyScopes(scopes: readonly Scope[]): void {
  const refused = scopes.filter((s) => !PROJECT_KEY_SCOPES.includes(s));
  if (refused.length > 0) {
    const names = refused.map((s) => `'${s}'`).join(", ");
    throw new AppError("validation_failed", `A project key cannot hold ${names}`, {
      errors: [
        {
          path: "scopes",
          message: `not allowed on a project key: ${names} (allowed: ${PROJECT_KEY_SCOPES.join(", ")})`,
        },
      ],
    });
  }
}

function requireFuture(at: Date | null | undefined, now: Date): void {
  if (at != null && at.getTime() <= now.getTime()) {
    throw new AppError("validation_failed", "expires_at must be in the future", {
      errors: [{ path: "expires_at", message: "must be in the future" }],
    });
  }
}

function callerScopes(principal: Principal): readonly Scope[] {
  return principal.kind === "api_key" || principal.kind === "member" ? principal.scopes : ORG_SCOPES;
}

export function createApiKeysService(deps: {
  db: Transactor;
  stores: Pick<Stores, "apiKeys" | "orgs" | "projects">;
  clock: Clock;
  prefixes: KeyPrefixes;
  keyUsage: Pick<KeyUsageTracker, "record" | "flush">;
  /** Active keys count against the plan (a rotation replaces a key and is not counted as a new one). */
  quotas: QuotaGuard;
}) {
  function mint(environment: KeyEnvironment): {
    plaintext: string;
    keyPrefix: string;
    lastFour: string;
    keyHash: string;
  } {
    const plaintext = generateKey(deps.prefixes.orgKeyPrefix, environment);
    return { plaintext, ...keyDisplay(plaintext), keyHash: sha256Hex(plaintext) };
  }

  async function lockLiveOrg(stores: Stores, orgId: string): Promise<void> {
    const org = await loadOrg(stores, orgId, true);
    if (org.status === "deleted") {
      throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
    }
  }

  /** The audit event of a key minted by a create or a rotation, in the caller's transaction. */
  async function auditCreated(
    stores: Stores,
    ctx: RequestContext,
    orgId: string,
    key: ApiKey,
  ): Promise<void> {
    await stores.audit.insert(
      auditEvent(
        ctx,
        {
          orgId,
          action: "api_key.created",
          targetType: "api_key",
          targetId: key.id,
          changes: diff(undefined, key),
        },
        deps.clock,
      ),
    );
  }

  async function findKey(stores: Pick<Stores, "apiKeys">, orgId: string, keyId: string): Promise<ApiKey> {
    const key = isId("key", keyId) ? await stores.apiKeys.find(orgId, keyId) : undefined;
    if (key === undefined) {
      throw notFound("API key", keyId);
    }
    return key;
  }

  return {
    /**
     * The instant a key's status is judged at when it is shown: the clock authentication uses, so a
     * listing never calls "active" a key that is already refused.
     */
    now: (): Date => deps.clock.now(),

    async create(
      ctx: RequestContext,
      orgId: string,
      input: CreateApiKeyInput,
    ): Promise<{ key: ApiKey; plaintext: string }> {
      const principal = ctx.principal;
      const projectId = input.projectId ?? null;
      if (projectId === null && visibleProjectIds(principal) !== null) {
        // An organization-wide key would reach projects its creator cannot see.
        throw new AppError("forbidden", "A credential confined to projects can only create project keys");
      }
      // Unnamed scopes default to what the creator holds (every scope for the operator); for a project
      // key, to the project-key scopes among those.
      const held = callerScopes(principal);
      const defaults = projectId === null ? held : PROJECT_KEY_SCOPES.filter((s) => held.includes(s));
      const scopes = normaliseScopes(input.scopes ?? defaults);
      if (projectId !== null) {
        requireProjectKeyScopes(scopes);
      }
      requireWithinCaller(principal, scopes);
      const now = deps.clock.now();
      requireFuture(input.expiresAt, now);
      const environment = input.environment ?? "live";
      const { plaintext, ...secret } = mint(environment);
      const key: ApiKey = {
        id: newId("key"),
        orgId,
        name: input.name,
        description: input.description ?? null,
        projectId,
        environment,
        ...secret,
        scopes,
        metadata: input.metadata ?? {},
        rateLimitOverrides: input.rateLimitOverrides ?? {},
        createdBy: principal.id,
        createdAt: now,
        expiresAt: input.expiresAt ?? null,
        revokedAt: null,
        lastUsedAt: null,
        rotatedFrom: null,
      };
      await deps.db.transaction(async (stores) => {
        await lockLiveOrg(stores, orgId);
        if (projectId !== null) {
          await loadProject(stores, principal, orgId, projectId);
        }
        const admission = await deps.quotas.enforce(stores, orgId, "api_keys");
        await stores.apiKeys.insert(key);
        await deps.quotas.recordAlerts(stores, admission);
        await auditCreated(stores, ctx, orgId, key);
        await emitEvent(
          stores,
          orgId,
          "api_key.created",
          { org_id: orgId, api_key: apiKeySummary(key) },
          deps.clock,
        );
      });
      return { key, plaintext };
    },

    async list(orgId: string, input: ListApiKeysInput): Promise<Page<ApiKey>> {
      await loadOrg(deps.stores, orgId);
      const rows = await deps.stores.apiKeys.list({
        orgId,
        limit: input.limit,
        after: decodeCursor(input.cursor, "key"),
        includeRevoked: input.includeRevoked,
      });
      return toPage(rows, input.limit);
    },

    async get(orgId: string, keyId: string): Promise<ApiKey> {
      await loadOrg(deps.stores, orgId);
      return findKey(deps.stores, orgId, keyId);
    },

    /** Changes what a key may do and how it is described; a revoked key is final (409). */
    async update(
      ctx: RequestContext,
      orgId: string,
      keyId: string,
      patch: UpdateApiKeyInput,
    ): Promise<ApiKey> {
      await loadOrg(deps.stores, orgId);
      findKeyShape(keyId);
      const now = deps.clock.now();
      requireFuture(patch.expiresAt, now);
      return deps.db.transaction(async (stores) => {
        await lockLiveOrg(stores, orgId);
        const before = await findKey(stores, orgId, keyId);
        if (before.revokedAt !== null) {
          throw new AppError(
            "invalid_state_transition",
            `API key '${keyId}' is revoked and cannot be changed`,
          );
        }
        const after: ApiKey = { ...before, ...patch };
        if (patch.scopes !== undefined) {
          after.scopes = normaliseScopes(patch.scopes);
          if (after.projectId !== null) {
            requireProjectKeyScopes(after.scopes);
          }
          requireWithinCaller(ctx.principal, after.scopes);
        }
        const changes = diff(before, after);
        if (Object.keys(changes).length === 0) {
          return before;
        }
        await stores.apiKeys.update(after);
        await stores.audit.insert(
          auditEvent(
            ctx,
            { orgId, action: "api_key.updated", targetType: "api_key", targetId: keyId, changes },
            deps.clock,
          ),
        );
        return after;
      });
    },

    /**
     * A new key with the same attributes; the previous one keeps working for `expirePreviousInSeconds`
     * (0: it stops now), never longer than it would have anyway.
     */
    async rotate(
      ctx: RequestContext,
      orgId: string,
      keyId: string,
      expirePreviousInSeconds: number,
    ): Promise<{ key: ApiKey; plaintext: string; previous: ApiKey }> {
      await loadOrg(deps.stores, orgId);
      findKeyShape(keyId);
      return deps.db.transaction(async (stores) => {
        await lockLiveOrg(stores, orgId);
        const old = await findKey(stores, orgId, keyId);
        const now = deps.clock.now();
        if (old.revokedAt !== null) {
          throw new AppError(
            "invalid_state_transition",
            `API key '${keyId}' is revoked; create a new key instead`,
          );
        }
        if (old.expiresAt !== null && old.expiresAt.getTime() <= now.getTime()) {
          throw new AppError(
            "invalid_state_transition",
            `API key '${keyId}' has expired; create a new key instead`,
          );
        }
        if (old.projectId !== null && (await stores.projects.find(orgId, old.projectId)) === undefined) {
          throw new AppError("invalid_state_transition", `The project of API key '${keyId}' is deleted`);
        }
        // Rotating mints a key as strong as the old one: the caller must hold all of its scopes.
        requireWithinCaller(ctx.principal, old.scopes);
        const { plaintext, ...secret } = mint(old.environment);
        const key: ApiKey = {
          ...old,
          id: newId("key"),
          ...secret,
          createdBy: ctx.principal.id,
          createdAt: now,
          lastUsedAt: null,
          rotatedFrom: old.id,
        };
        const overlapEnd = new Date(now.getTime() + expirePreviousInSeconds * 1000);
        const previous: ApiKey = {
          ...old,
          expiresAt:
            old.expiresAt !== null && old.expiresAt.getTime() < overlapEnd.getTime()
              ? old.expiresAt
              : overlapEnd,
        };
        await stores.apiKeys.insert(key);
        await stores.apiKeys.update(previous);
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "api_key.rotated",
              targetType: "api_key",
              targetId: old.id,
              changes: {
                expires_at: {
                  from: old.expiresAt?.toISOString() ?? null,
                  to: previous.expiresAt?.toISOString() ?? null,
                },
                rotated_to: { to: key.id },
              },
            },
            deps.clock,
          ),
        );
        await auditCreated(stores, ctx, orgId, key);
        await emitEvent(
          stores,
          orgId,
          "api_key.rotated",
          {
            org_id: orgId,
            api_key: apiKeySummary(key),
            previous_api_key_id: old.id,
            previous_expires_at: previous.expiresAt?.toISOString() ?? null,
          },
          deps.clock,
        );
        return { key, plaintext, previous };
      });
    },

    /** Revocation is immediate and final; revoking a revoked key returns it unchanged. */
    async revoke(ctx: RequestContext, orgId: string, keyId: string): Promise<ApiKey> {
      await loadOrg(deps.stores, orgId);
      findKeyShape(keyId);
      return deps.db.transaction(async (stores) => {
        const before = await findKey(stores, orgId, keyId);
        if (before.revokedAt !== null) {
          return before;
        }
        const now = deps.clock.now();
        const after = await stores.apiKeys.revoke(orgId, keyId, now);
        if (after === undefined) {
          throw notFound("API key", keyId);
        }
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "api_key.revoked",
              targetType: "api_key",
              targetId: keyId,
              changes: { revoked_at: { from: null, to: now.toISOString() } },
            },
            deps.clock,
          ),
        );
        await emitEvent(
          stores,
          orgId,
          "api_key.revoked",
          { org_id: orgId, api_key: apiKeySummary(after), reason: "revoked" },
          deps.clock,
        );
        return after;
      });
    },

    /**
     * For products that check keys themselves: the same judgement as authentication, answered as data.
     * A malformed key (bad checksum, foreign prefix) is answered without a database read.
     */
    async verify(presented: string): Promise<VerifyResult> {
      const parsed = parseKey(presented);
      if (parsed === undefined || parsed.prefix !== deps.prefixes.orgKeyPrefix) {
        return { valid: false, reason: "malformed" };
      }
      const key = await deps.stores.apiKeys.findByHash(sha256Hex(presented));
      if (key === undefined) {
        return { valid: false, reason: "unknown" };
      }
      const refusal = keyRefusal(key, deps.clock.now());
      if (refusal !== undefined) {
        return { valid: false, reason: refusal };
      }
      if (key.orgStatus === "suspended") {
        return { valid: false, reason: "organization_suspended" };
      }
      // A verification is a use of the key, as much as a request to Orgplane itself.
      deps.keyUsage.record(key.id);
      return { valid: true, key };
    },

    /** Writes the last-use times recorded since the previous flush, in one statement. */
    flushLastUsed: (): Promise<number> => deps.keyUsage.flush(),

    /**
     * The `api_key.expiring` sweep (a pg-boss cron): emit the event once for every live key that expires
     * within `EXPIRING_WINDOW_MS`, marking it in the same transaction, a batch at a time. Keys replaced by
     * a rotation are skipped (their end was chosen at the rotation); a key whose expiry is changed later is
     * announced again when the new one comes near. Safe from several processes at once. Returns how many.
     */
    async sweepExpiring(): Promise<number> {
      let total = 0;
      for (;;) {
        const now = deps.clock.now();
        const announced = await deps.db.transaction(async (stores) => {
          const due = await stores.apiKeys.lockExpiring({
            after: now,
            until: new Date(now.getTime() + EXPIRING_WINDOW_MS),
            limit: EXPIRING_SWEEP_BATCH,
          });
          for (const key of due) {
            if (key.expiresAt === null) {
              throw new Error(`key ${key.id} without an expiry was selected as expiring`);
            }
            await stores.apiKeys.markExpiringNotified(key.orgId, key.id, now);
            await emitEvent(
              stores,
              key.orgId,
              "api_key.expiring",
              { org_id: key.orgId, api_key: apiKeySummary(key), expires_at: key.expiresAt.toISOString() },
              deps.clock,
            );
          }
          return due.length;
        });
        total += announced;
        if (announced < EXPIRING_SWEEP_BATCH) {
          return total;
        }
      }
    },
  };
}

/** An id of the wrong shape is a 404 before any database read. */
function findKeyShape(keyId: string): void {
  if (!isId("key", keyId)) {
    throw notFound("API key", keyId);
  }
}

export type ApiKeysService = ReturnType<typeof createApiKeysService>;

/** Mint an operator key. The plaintext is returned once; only its hash is kept. */
export function newOperatorKey(
  prefix: string,
  name: string,
  clock: Clock,
): { key: OperatorKey; plaintext: string } {
  const plaintext = generateKey(prefix, "live");
  const { keyPrefix, lastFour } = keyDisplay(plaintext);
  return {
    key: {
      id: newId("opk"),
      name,
      keyPrefix,
      lastFour,
      keyHash: sha256Hex(plaintext),
      createdAt: clock.now(),
      revokedAt: null,
    },
    plaintext,
  };
}
