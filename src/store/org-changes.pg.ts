import type pg from "pg";
import type { OrgChangeHandlers, OrgChangeSource } from "../domain/authorize/org-changes.ts";

/** The channel the triggers of migration 0004 NOTIFY on, with the organization's id as the payload. */
const ORG_CHANGES_CHANNEL = "orgplane_org_changes";

/** A listener that lost its connection tries again after this long; caches are cleared when it is back. */
const RELISTEN_MS = 1000;

/** A closing connection reports back within milliseconds; this only bounds a broken one. */
const STOP_WAIT_MS = 2000;

/**
 * One pooled connection per process stays in LISTEN for organization changes committed by any process.
 * Whenever it (re)connects, notifications may have been missed, so `reset` is called once it listens.
 * While it is disconnected, `listening()` is false and callers must not trust their caches.
 */
export function createOrgChangeListener(pool: pg.Pool, onError: (err: Error) => void): OrgChangeSource {
  let client: pg.PoolClient | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  function scheduleRetry(handlers: OrgChangeHandlers): void {
    if (stopped) {
      return;
    }
    retryTimer = setTimeout(() => void connect(handlers), RELISTEN_MS);
    retryTimer.unref();
  }

  async function connect(handlers: OrgChangeHandlers): Promise<void> {
    let c: pg.PoolClient | undefined;
    try {
      c = await pool.connect();
      const listening = c;
      listening.on("notification", (msg) => {
        if (msg.channel === ORG_CHANGES_CHANNEL && msg.payload !== undefined && msg.payload !== "") {
          handlers.changed(msg.payload);
        }
      });
      listening.on("error", (err) => {
        onError(err);
        if (client === listening) {
          client = undefined;
          // Nothing is signalled while disconnected: stop trusting what is cached now, not on return.
          handlers.reset();
          listening.release(err);
          scheduleRetry(handlers);
        }
      });
      await listening.query(`listen ${ORG_CHANGES_CHANNEL}`);
      if (stopped) {
        listening.release(true);
        return;
      }
      client = listening;
      // Whatever changed while nobody listened was not signalled here.
      handlers.reset();
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)));
      c?.release(true);
      scheduleRetry(handlers);
    }
  }

  return {
    start: (handlers) => connect(handlers),
    listening: () => client !== undefined,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      const listening = client;
      client = undefined;
      if (listening === undefined) {
        return;
      }
      // Destroyed rather than returned, and awaited until its socket closed (as the mail wake source).
      const ended = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, STOP_WAIT_MS);
        listening.once("end", () => {
          clearTimeout(timer);
          resolve();
        });
      });
      listening.release(true);
      await ended;
    },
  };
}
