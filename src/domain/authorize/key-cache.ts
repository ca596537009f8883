import type { Clock } from "../../lib/clock.ts";
import type { ApiKeysStore } from "../api-keys/api-keys.store.ts";
import type { ApiKeyWithOrg } from "../api-keys/api-keys.types.ts";

/** How long a found key (with its organization's status and its project's state) is trusted. */
export const KEY_CACHE_TTL_MS = 30_000;
/** Bounds memory: the least recently used key is dropped beyond this many. */
export const KEY_CACHE_MAX_KEYS = 50_000;

/**
 * Keys found by hash, kept in process so a repeat authorize reads no database. Only for processes that
 * listen to organization changes (OrgChangeSource): `forgetOrg` drops an organization's keys when any
 * process commits a change to them, and `clear` everything when signals may have been missed. Unknown
 * hashes are not cached: a key created a moment ago is found on its first use.
 */
export function createKeyCache(deps: {
  store: Pick<ApiKeysStore, "findByHash">;
  clock: Clock;
  /** False while organization changes may go unsignalled: the cache is then bypassed. */
  trusted: () => boolean;
  ttlMs?: number;
  maxKeys?: number;
}) {
  const ttlMs = deps.ttlMs ?? KEY_CACHE_TTL_MS;
  const maxKeys = deps.maxKeys ?? KEY_CACHE_MAX_KEYS;
  /** Insertion order is recency: a hit is moved to the end, the first entry is the least recently used. */
  const entries = new Map<string, { key: ApiKeyWithOrg; expiresAt: number }>();
  const hashesByOrg = new Map<string, Set<string>>();
  /**
   * Bumped by every invalidation: a read that started before one must not store what it read, since it
   * may predate the change that was signalled.
   */
  let generation = 0;

  function remove(hash: string): void {
    const entry = entries.get(hash);
    if (entry === undefined) {
      return;
    }
    entries.delete(hash);
    const hashes = hashesByOrg.get(entry.key.orgId);
    hashes?.delete(hash);
    if (hashes?.size === 0) {
      hashesByOrg.delete(entry.key.orgId);
    }
  }

  /** The cached key of this hash, without a read; undefined on a miss or while untrusted. */
  function peek(hash: string): ApiKeyWithOrg | undefined {
    if (!deps.trusted()) {
      return undefined;
    }
    const hit = entries.get(hash);
    if (hit === undefined) {
      return undefined;
    }
    if (hit.expiresAt <= deps.clock.now().getTime()) {
      remove(hash);
      return undefined;
    }
    entries.delete(hash);
    entries.set(hash, hit);
    return hit.key;
  }

  return {
    peek,

    async findByHash(hash: string): Promise<ApiKeyWithOrg | undefined> {
      if (!deps.trusted()) {
        return deps.store.findByHash(hash);
      }
      const cached = peek(hash);
      if (cached !== undefined) {
        return cached;
      }
      const now = deps.clock.now().getTime();
      const startedAt = generation;
      const key = await deps.store.findByHash(hash);
      if (key === undefined || startedAt !== generation) {
        return key;
      }
      remove(hash);
      entries.set(hash, { key, expiresAt: now + ttlMs });
      const hashes = hashesByOrg.get(key.orgId) ?? new Set<string>();
      hashes.add(hash);
      hashesByOrg.set(key.orgId, hashes);
      while (entries.size > maxKeys) {
        const oldest = entries.keys().next();
        if (oldest.done === true) {
          break;
        }
        remove(oldest.value);
      }
      return key;
    },

    forgetOrg(orgId: string): void {
      generation += 1;
      for (const hash of hashesByOrg.get(orgId) ?? []) {
        entries.delete(hash);
      }
      hashesByOrg.delete(orgId);
    },

    clear(): void {
      generation += 1;
      entries.clear();
      hashesByOrg.clear();
    },

    size: (): number => entries.size,
  };
}

export type KeyCache = ReturnType<typeof createKeyCache>;
