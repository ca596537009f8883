import type { Clock } from "../../lib/clock.ts";
import { singleFlight } from "../../lib/single-flight.ts";
import type { ApiKeysStore } from "../api-keys/api-keys.store.ts";
import type { ApiKeyWithOrg } from "../api-keys/api-keys.types.ts";

/** How long a found key (with its organization's status and its project's state) is trusted. */
export const KEY_CACHE_TTL_MS = 30_000;
/**
 * A key used in the last this-long of its TTL is read again in the background, so a key in steady use never
 * makes its requests wait for the read when its copy expires.
 */
export const KEY_CACHE_REFRESH_AHEAD_MS = 5_000;
/** Bounds memory: the key least recently read is dropped beyond this many. */
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
  refreshAheadMs?: number;
  maxKeys?: number;
}) {
  const ttlMs = deps.ttlMs ?? KEY_CACHE_TTL_MS;
  const refreshAheadMs = deps.refreshAheadMs ?? KEY_CACHE_REFRESH_AHEAD_MS;
  const maxKeys = deps.maxKeys ?? KEY_CACHE_MAX_KEYS;
  /**
   * Insertion order is when a key was last read: the first entry is the one read longest ago. A key in use is
   * read again every TTL (refresh-ahead), which moves it to the end, so this is least-recently-used to within
   * one TTL. A hit does not move its entry: deleting and re-inserting on every request rebuilt the map's table
   * every few hundred requests, and each rebuilt table, linked from the one it replaced, outlived
   * young-generation collections (a steady stream of promoted garbage, and full collections with it).
   */
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

  /** Reads the key and caches what it found, unless an invalidation came while it was read. */
  async function readAndStore(hash: string): Promise<ApiKeyWithOrg | undefined> {
    const now = deps.clock.now().getTime();
    const startedAt = generation;
    const key = await deps.store.findByHash(hash);
    if (startedAt !== generation) {
      return key;
    }
    remove(hash);
    if (key === undefined) {
      return undefined;
    }
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
  }

  /**
   * `readAndStore`, shared by the requests that need the same key while it is read. A request after an
   * invalidation does not join a read that began before it: that read may predate the change.
   */
  const load = singleFlight(readAndStore, () => generation);

  /**
   * The cached key of this hash, without waiting for a read; undefined on a miss or while untrusted. A hit
   * in its last `refreshAheadMs` starts a read in the background (a failure there leaves the copy to
   * expire, and the next request after that reads it and sees the error).
   */
  function peek(hash: string): ApiKeyWithOrg | undefined {
    if (!deps.trusted()) {
      return undefined;
    }
    const hit = entries.get(hash);
    if (hit === undefined) {
      return undefined;
    }
    const now = deps.clock.now().getTime();
    if (hit.expiresAt <= now) {
      remove(hash);
      return undefined;
    }
    if (hit.expiresAt - now < refreshAheadMs) {
      load(hash).catch(() => {});
    }
    return hit.key;
  }

  return {
    peek,

    async findByHash(hash: string): Promise<ApiKeyWithOrg | undefined> {
      if (!deps.trusted()) {
        return deps.store.findByHash(hash);
      }
      return peek(hash) ?? load(hash);
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
