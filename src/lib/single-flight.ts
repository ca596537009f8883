/**
 * `load` behind a gate: calls for a key while a load of that key is running share it instead of starting
 * their own. For caches on the hot path: when an entry expires, the requests in flight at that moment make
 * one database read between them, not one each. With `epoch` (a counter the cache bumps on every
 * invalidation), a call joins only a load begun in the same epoch: one begun before an invalidation may
 * have read what it invalidated.
 */
export function singleFlight<V>(
  load: (key: string) => Promise<V>,
  epoch: () => number = () => 0,
): (key: string) => Promise<V> {
  const running = new Map<string, { epoch: number; shared: Promise<V> }>();
  return (key) => {
    const now = epoch();
    const current = running.get(key);
    if (current !== undefined && current.epoch === now) {
      return current.shared;
    }
    const shared: Promise<V> = load(key).finally(() => {
      if (running.get(key)?.shared === shared) {
        running.delete(key);
      }
    });
    running.set(key, { epoch: now, shared });
    return shared;
  };
}

/**
 * How long before its expiry a cached entry that is read starts its own refresh in the background. A busy
 * key is then refreshed before it expires, so none of its requests waits for the read, and no entry ever
 * answers past its expiry: an expired or missing one is read before answering.
 */
export const REFRESH_AHEAD_MS = 250;

/**
 * The cached value while it has not expired — starting `refresh` in the background when it expires within
 * REFRESH_AHEAD_MS (a failure there is the next reader's to see); otherwise what `refresh` reads.
 */
export function freshOrRefreshing<V>(
  hit: { value: V; expiresAt: number } | undefined,
  now: number,
  refresh: () => Promise<V>,
): V | Promise<V> {
  if (hit === undefined || hit.expiresAt <= now) {
    return refresh();
  }
  if (hit.expiresAt - now < REFRESH_AHEAD_MS) {
    refresh().catch(() => {});
  }
  return hit.value;
}

/** A background pass run on demand: see `passOnWake`. */
export type WakeablePass = {
  /** Run the pass now, or once more after the running one. Nothing after `stop()`. */
  wake(): void;
  /** True once `stop()` was called: a pass in a loop checks it to end early. */
  stopped(): boolean;
  /** No pass starts any more; resolves when the running one has ended. */
  stop(): Promise<void>;
};

/**
 * `pass`, one at a time, whenever woken. A wake-up while a pass runs makes it run once more afterwards,
 * however many came: the running pass may have read before the change that woke it. `pass` handles its
 * own errors (a rejection is dropped).
 */
export function passOnWake(pass: () => Promise<void>): WakeablePass {
  let stopped = false;
  let running: Promise<void> | undefined;
  let again = false;
  function wake(): void {
    if (stopped) {
      return;
    }
    if (running !== undefined) {
      again = true;
      return;
    }
    running = pass()
      .catch(() => {})
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          wake();
        }
      });
  }
  return {
    wake,
    stopped: () => stopped,
    async stop() {
      stopped = true;
      await running;
    },
  };
}
