/**
 * `load` behind a gate: calls for a key while a load of that key is running share it instead of starting
 * their own. For caches on the hot path: when an entry expires, the requests in flight at that moment make
 * one database read between them, not one each.
 */
export function singleFlight<V>(load: (key: string) => Promise<V>): (key: string) => Promise<V> {
  const running = new Map<string, Promise<V>>();
  return (key) => {
    let shared = running.get(key);
    if (shared === undefined) {
      shared = load(key).finally(() => running.delete(key));
      running.set(key, shared);
    }
    return shared;
  };
}
