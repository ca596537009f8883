import { parseKey } from "../../lib/api-key-format.ts";
import type { Clock } from "../../lib/clock.ts";
import { AppError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/hash.ts";
import { newId } from "../../lib/ids.ts";
import { REFRESH_AHEAD_MS, singleFlight } from "../../lib/single-flight.ts";
import type { KeyPrefixes } from "../api-keys/api-keys.service.ts";
import { keyRefusal } from "../api-keys/key-status.ts";
import type { KeyUsageTracker } from "../api-keys/key-usage.ts";
import type { Stores } from "../stores.ts";
import { type IdentityVerifier, looksLikeJwt } from "./identity.ts";
import type { OperatorPrincipal, Principal, UserPrincipal } from "./principal.ts";

/** last_login_at is kept to the hour: a busy user does not cost a write per request. */
const LAST_LOGIN_RESOLUTION_MS = 60 * 60 * 1000;
/**
 * How long a process trusts an operator key it found. The operator calls `POST /v1/authorize` on every
 * request of its product, so its key must not cost a database read per call; a revoked operator key is
 * refused by every process within this second.
 */
export const OPERATOR_KEY_CACHE_MS = 1000;
/** There are a handful of operator keys; this bounds what a flood of made-up ones could hold. */
const OPERATOR_KEY_CACHE_MAX = 1000;

/** Turns a presented credential into a principal, or refuses it. */
export function createAuthenticator(deps: {
  stores: Pick<Stores, "apiKeys" | "operatorKeys" | "users">;
  clock: Clock;
  prefixes: KeyPrefixes;
  /** Absent when OIDC is not configured: sign-in tokens are then refused like any unknown credential. */
  identity: IdentityVerifier | undefined;
  /** Records each key's last use in memory; never a database write per request. */
  keyUsage: Pick<KeyUsageTracker, "record">;
}) {
  /**
   * Found operator keys by hash, with the time (monotonic, not the domain clock: this is a cache, not
   * business time) they stop being trusted: OPERATOR_KEY_CACHE_MS after the read that found them began.
   */
  const operatorKeys = new Map<string, { principal: OperatorPrincipal; expiresAt: number }>();
  /**
   * Reads an operator key and stores what it found. Concurrent reads of one key share a single read. Unknown
   * or revoked keys are not remembered: a key created a moment ago works on its first use.
   */
  const loadOperatorKey = singleFlight(async (hash): Promise<OperatorPrincipal | undefined> => {
    const readAt = performance.now();
    const key = await deps.stores.operatorKeys.findByHash(hash);
    if (key === undefined || key.revokedAt !== null) {
      operatorKeys.delete(hash);
      return undefined;
    }
    const principal: OperatorPrincipal = { kind: "operator", id: key.id, name: key.name };
    if (operatorKeys.size >= OPERATOR_KEY_CACHE_MAX) {
      operatorKeys.clear();
    }
    operatorKeys.set(hash, { principal, expiresAt: readAt + OPERATOR_KEY_CACHE_MS });
    return principal;
  });

  /**
   * The operator key of this hash, if found within the last OPERATOR_KEY_CACHE_MS. In its last
   * REFRESH_AHEAD_MS the key is read again in the background: the operator's requests, which arrive
   * without pause, then never wait for that read, and no copy is trusted past its second.
   */
  function cachedOperatorKey(hash: string): OperatorPrincipal | undefined {
    const hit = operatorKeys.get(hash);
    if (hit === undefined) {
      return undefined;
    }
    const now = performance.now();
    if (hit.expiresAt <= now) {
      return undefined;
    }
    if (hit.expiresAt - now < REFRESH_AHEAD_MS) {
      // A failed refresh leaves the copy to expire; the next request after that reads and sees the error.
      loadOperatorKey(hash).catch(() => {});
    }
    return hit.principal;
  }

  async function operatorKey(hash: string): Promise<OperatorPrincipal | undefined> {
    return cachedOperatorKey(hash) ?? loadOperatorKey(hash);
  }

  const invalid = () =>
    new AppError("invalid_credential", "The credential is not a valid API key or sign-in token");

  async function signIn(token: string, identity: IdentityVerifier): Promise<UserPrincipal> {
    const result = await identity.verify(token);
    if (!result.ok) {
      throw new AppError(result.reason, result.detail);
    }
    const { claims } = result;
    const now = deps.clock.now();
    let user = await deps.stores.users.findBySubject(claims.subject);
    // Profile changes are written when they happen; otherwise at most one write per user an hour.
    const stale =
      user === undefined ||
      user.email !== claims.email ||
      user.name !== claims.name ||
      user.avatarUrl !== claims.avatarUrl ||
      user.lastLoginAt === null ||
      now.getTime() - user.lastLoginAt.getTime() > LAST_LOGIN_RESOLUTION_MS;
    if (stale) {
      user = await deps.stores.users.upsertFromClaims(claims, newId("usr"), now);
    }
    if (user === undefined) {
      throw invalid();
    }
    return {
      kind: "user",
      id: user.id,
      subject: user.subject,
      email: user.email,
      name: user.name,
      activeOrgId: claims.orgId,
    };
  }

  return {
    async authenticate(presented: string): Promise<Principal> {
      if (looksLikeJwt(presented)) {
        if (deps.identity === undefined) {
          throw new AppError(
            "invalid_credential",
            "Sign-in tokens are not accepted here: OIDC is not configured",
          );
        }
        return signIn(presented, deps.identity);
      }
      const hash = sha256Hex(presented);
      // The hot path: an operator key seen within the second is known good, checksum included.
      const cached = cachedOperatorKey(hash);
      if (cached !== undefined) {
        return cached;
      }
      // The checksum refuses typos and random strings before any database read.
      const parsed = parseKey(presented);
      if (parsed === undefined) {
        throw invalid();
      }
      if (parsed.prefix === deps.prefixes.operatorKeyPrefix) {
        const principal = await operatorKey(hash);
        if (principal === undefined) {
          throw invalid();
        }
        return principal;
      }
      if (parsed.prefix !== deps.prefixes.orgKeyPrefix) {
        throw invalid();
      }
      // No cache: every request reads the key, so a revocation is seen by every process at once.
      const key = await deps.stores.apiKeys.findByHash(hash);
      if (key === undefined) {
        throw invalid();
      }
      const refusal = keyRefusal(key, deps.clock.now());
      if (refusal === "organization_deleted" || refusal === "project_deleted") {
        throw invalid();
      }
      if (refusal === "key_revoked") {
        throw new AppError("key_revoked", `API key '${key.id}' has been revoked`);
      }
      if (refusal === "key_expired") {
        throw new AppError("key_expired", `API key '${key.id}' expired at ${key.expiresAt?.toISOString()}`);
      }
      if (key.orgStatus === "deleted") {
        throw invalid();
      }
      deps.keyUsage.record(key.id);
      return {
        kind: "api_key",
        id: key.id,
        name: key.name,
        orgId: key.orgId,
        orgStatus: key.orgStatus,
        projectId: key.projectId,
        environment: key.environment,
        scopes: key.scopes,
        rateLimitOverrides: key.rateLimitOverrides,
      };
    },
  };
}

export type Authenticator = ReturnType<typeof createAuthenticator>;
