import type { Clock } from "../../lib/clock.ts";
import type { ApiKeysStore, KeyUse } from "./api-keys.store.ts";

/**
 * `last_used_at` without a database write per request: each authenticated request records its key's
 * latest use in memory, and `flush` writes every pending use in one statement. main.ts flushes every
 * 30 s and once more at shutdown, so the column is at most ~30 s behind.
 */
export function createKeyUsageTracker(deps: { store: Pick<ApiKeysStore, "touchLastUsed">; clock: Clock }) {
  let pending = new Map<string, Date>();

  return {
    /** Costs a map write: called on every authenticated request. */
    record(keyId: string): void {
      pending.set(keyId, deps.clock.now());
    },

    /** The number of keys waiting for the next flush. */
    pendingCount: (): number => pending.size,

    /** Writes every pending use in one batch; on failure they are kept for the next flush. */
    async flush(): Promise<number> {
      if (pending.size === 0) {
        return 0;
      }
      const batch = pending;
      pending = new Map();
      const uses: KeyUse[] = [...batch].map(([keyId, at]) => ({ keyId, at }));
      try {
        await deps.store.touchLastUsed(uses);
      } catch (err) {
        for (const { keyId, at } of uses) {
          const newer = pending.get(keyId);
          if (newer === undefined || newer.getTime() < at.getTime()) {
            pending.set(keyId, at);
          }
        }
        throw err;
      }
      return uses.length;
    },
  };
}

export type KeyUsageTracker = ReturnType<typeof createKeyUsageTracker>;
