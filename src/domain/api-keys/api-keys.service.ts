import { generateKey, type KeyEnvironment, keyDisplay, parseKey } from "../../lib/api-key-format.ts";
import type { Clock } from "../../lib/clock.ts";
import { decodeCursor, type Page, toPage } from "../../lib/cursor.ts";
import { AppError, notFound } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { isId, newId } from "../../lib/ids.ts";
import { auditEvent } from "../audit/audit-event.ts";
import { ORG_SCOPES, type Principal, type RequestContext, type Scope } from "../auth/principal.ts";
import { loadOrg } from "../orgs/orgs.service.ts";
import type { Stores, Transactor } from "../stores.ts";
import type { ApiKey, OperatorKey } from "./api-keys.types.ts";

export type KeyPrefixes = { orgKeyPrefix: string; operatorKeyPrefix: string };

export type CreateApiKeyInput = {
  name: string;
  environment: KeyEnvironment | undefined;
  scopes: Scope[] | undefined;
  expiresAt: Date | null | undefined;
};

export type ListApiKeysInput = { limit: number; cursor: string | undefined; includeRevoked: boolean };

export function createApiKeysService(deps: {
  db: Transactor;
  stores: Pick<Stores, "apiKeys" | "orgs">;
  clock: Clock;
  prefixes: KeyPrefixes;
}) {
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
      // Unnamed scopes default to what the creator holds: every scope for the operator, its own for a key.
      const defaults =
        principal.kind === "api_key" || principal.kind === "member" ? principal.scopes : ORG_SCOPES;
      const scopes = [...new Set(input.scopes ?? defaults)].sort() as Scope[];
      if (principal.kind === "api_key" || principal.kind === "member") {
        // Nobody mints a key stronger than themselves.
        const missing = scopes.filter((s) => !principal.scopes.includes(s));
        if (missing.length > 0) {
          throw new AppError(
            "insufficient_scope",
            `A key cannot grant scopes it does not hold: ${missing.map((s) => `'${s}'`).join(", ")}`,
          );
        }
      }
      const now = deps.clock.now();
      if (input.expiresAt != null && input.expiresAt.getTime() <= now.getTime()) {
        throw new AppError("validation_failed", "expires_at must be in the future", {
          errors: [{ path: "expires_at", message: "must be in the future" }],
        });
      }
      const environment = input.environment ?? "live";
      const plaintext = generateKey(deps.prefixes.orgKeyPrefix, environment);
      const { keyPrefix, lastFour } = keyDisplay(plaintext);
      const key: ApiKey = {
        id: newId("key"),
        orgId,
        name: input.name,
        description: null,
        projectId: null,
        environment,
        keyPrefix,
        lastFour,
        keyHash: sha256Hex(plaintext),
        scopes,
        metadata: {},
        rateLimitOverrides: {},
        createdBy: principal.id,
        createdAt: now,
        expiresAt: input.expiresAt ?? null,
        revokedAt: null,
        lastUsedAt: null,
        rotatedFrom: null,
      };
      await deps.db.transaction(async (stores) => {
        const org = await loadOrg(stores, orgId, true);
        if (org.status === "deleted") {
          throw new AppError("invalid_state_transition", `Organization '${orgId}' is deleted`);
        }
        await stores.apiKeys.insert(key);
        await stores.audit.insert(
          auditEvent(
            ctx,
            {
              orgId,
              action: "api_key.created",
              targetType: "api_key",
              targetId: key.id,
              changes: {
                name: { to: key.name },
                environment: { to: key.environment },
                scopes: { to: key.scopes },
                expires_at: { to: key.expiresAt?.toISOString() ?? null },
              },
            },
            deps.clock,
          ),
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
      const key = isId("key", keyId) ? await deps.stores.apiKeys.find(orgId, keyId) : undefined;
      if (key === undefined) {
        throw notFound("API key", keyId);
      }
      return key;
    },

    /** Revocation is immediate and final; revoking a revoked key returns it unchanged. */
    async revoke(ctx: RequestContext, orgId: string, keyId: string): Promise<ApiKey> {
      await loadOrg(deps.stores, orgId);
      if (!isId("key", keyId)) {
        throw notFound("API key", keyId);
      }
      return deps.db.transaction(async (stores) => {
        const before = await stores.apiKeys.find(orgId, keyId);
        if (before === undefined) {
          throw notFound("API key", keyId);
        }
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
        return after;
      });
    },
  };
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
