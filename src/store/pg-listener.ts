import type pg from "pg";

/** A closing connection reports back within milliseconds; this only bounds a broken one. */
const STOP_WAIT_MS = 2000;

export type ChannelHandlers = {
  /** A notification on the channel (its payload, "" when none). */
  notified(payload: string): void;
  /** Now listening: anything sent while nobody listened was missed. */
  connected(): void;
  /** The connection was lost; a new one is tried after the retry delay. */
  disconnected(): void;
};

export type ChannelListener = {
  start(handlers: ChannelHandlers): Promise<void>;
  /** True while notifications arrive. */
  listening(): boolean;
  stop(): Promise<void>;
};

/**
 * One pooled connection per process kept in LISTEN on `channel`, reconnecting after `retryMs` when it
 * is lost. Shared by every LISTEN/NOTIFY consumer (mail wake-ups, cache invalidation).
 */
export function listenOnChannel(
  pool: pg.Pool,
  channel: string,
  options: { retryMs: number; onError: (err: Error) => void },
): ChannelListener {
  let client: pg.PoolClient | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  function scheduleRetry(handlers: ChannelHandlers): void {
    if (stopped) {
      return;
    }
    retryTimer = setTimeout(() => void connect(handlers), options.retryMs);
    retryTimer.unref();
  }

  async function connect(handlers: ChannelHandlers): Promise<void> {
    let c: pg.PoolClient | undefined;
    try {
      c = await pool.connect();
      const listening = c;
      listening.on("notification", (msg) => {
        if (msg.channel === channel) {
          handlers.notified(msg.payload ?? "");
        }
      });
      listening.on("error", (err) => {
        options.onError(err);
        if (client === listening) {
          client = undefined;
          handlers.disconnected();
          listening.release(err);
          scheduleRetry(handlers);
        }
      });
      await listening.query(`listen ${channel}`);
      if (stopped) {
        listening.release(true);
        return;
      }
      client = listening;
      handlers.connected();
    } catch (err) {
      options.onError(err instanceof Error ? err : new Error(String(err)));
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
      // Destroyed rather than returned: a pooled connection must not keep listening for the next borrower.
      // Wait until its socket has closed (bounded): the pool no longer counts it, and a database stopped
      // right after shutdown (the embedded cluster) would otherwise cut it mid-goodbye.
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
