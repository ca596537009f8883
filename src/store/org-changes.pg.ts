import type pg from "pg";
import type { OrgChangeHandlers, OrgChangeSource } from "../domain/authorize/org-changes.ts";
import { listenOnChannel } from "./pg-listener.ts";

/** The channel the triggers of migration 0004 NOTIFY on, with the organization's id as the payload. */
const ORG_CHANGES_CHANNEL = "orgplane_org_changes";

/** A listener that lost its connection tries again after this long; caches are cleared when it is back. */
const RELISTEN_MS = 1000;

/**
 * One pooled connection per process stays in LISTEN for organization changes committed by any process.
 * Whenever it (re)connects, notifications may have been missed, so `reset` is called once it listens.
 * While it is disconnected, `listening()` is false and callers must not trust their caches.
 */
export function createOrgChangeListener(pool: pg.Pool, onError: (err: Error) => void): OrgChangeSource {
  const listener = listenOnChannel(pool, ORG_CHANGES_CHANNEL, { retryMs: RELISTEN_MS, onError });
  return {
    start: (handlers: OrgChangeHandlers) =>
      listener.start({
        notified: (orgId) => {
          if (orgId !== "") {
            handlers.changed(orgId);
          }
        },
        // Whatever changed while nobody listened was not signalled here.
        connected: () => handlers.reset(),
        // Nothing is signalled while disconnected: stop trusting what is cached now, not on return.
        disconnected: () => handlers.reset(),
      }),
    listening: () => listener.listening(),
    stop: () => listener.stop(),
  };
}
