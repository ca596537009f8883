import type pg from "pg";
import type { AuditCursor, AuditLogRow, LokiAuditSource } from "../infra/loki-export/types.ts";

/*
 * What the Loki exporter reads of the audit trail, and its cursors (table loki_audit_cursors, written by hand
 * in the migration like the webhook tables). Raw SQL over one dedicated connection: the one that holds the
 * exporter's advisory lock, so only the process holding it reads and saves.
 */

/** Arbitrary but fixed, like the migration lock: the one process exporting audit events holds it. */
const LOKI_AUDIT_LOCK_KEY = 7_212_019_437;

type AuditRowRecord = {
  id: string;
  org_id: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string;
  changes_json: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  created_at: number;
};

const READ_SQL = `
select id, org_id, actor_type, actor_id, action, target_type, target_id, changes::text as changes_json,
       ip, user_agent, request_id, (extract(epoch from created_at) * 1000)::float8 as created_at
  from audit_events
 where id > $1 and id < $2 and ($3::text[] is null or org_id = any($3::text[]))
 order by id
 limit $4`;

const LOAD_SQL = `
select org_id, round(extract(epoch from through_at) * 1000)::float8 as through_ms, recent_ids
  from loki_audit_cursors
 where org_id = any($1::text[])`;

const SAVE_SQL = `
insert into loki_audit_cursors (org_id, through_at, recent_ids, updated_at)
select c.org_id, to_timestamp(c.through_ms / 1000.0), c.recent_ids, now()
  from json_to_recordset($1::json) as c(org_id text, through_ms float8, recent_ids text[])
    on conflict (org_id) do update
   set through_at = excluded.through_at, recent_ids = excluded.recent_ids, updated_at = excluded.updated_at`;

/**
 * The audit source over `pool`: while this process leads, one of the pool's connections stays checked out,
 * holding the lock; a process that does not lead borrows a connection only to try for the lock.
 */
export function createLokiAuditSource(pool: pg.Pool): LokiAuditSource {
  let held: pg.PoolClient | undefined;
  let closed = false;
  // The lock lives as long as its session: an error on the connection means the lock may be gone too.
  const onError = () => {
    if (held !== undefined) {
      drop(held);
    }
  };

  /** Give the held connection up: destroyed, not returned to the pool (the lock goes with its session). */
  function drop(client: pg.PoolClient, err?: Error): void {
    if (held !== client) {
      return;
    }
    held = undefined;
    client.off("error", onError);
    client.release(err ?? true);
  }

  /**
   * `text` as the named prepared statement `name` of the held connection: PostgreSQL plans it once per
   * connection, not on every poll (the audit trail is read every second).
   */
  async function query<R extends pg.QueryResultRow>(
    name: string,
    text: string,
    values: unknown[],
  ): Promise<R[]> {
    const client = held;
    if (client === undefined) {
      throw new Error("the audit export lock is not held");
    }
    try {
      const result = await client.query<R>({ name, text, values });
      return result.rows;
    } catch (err) {
      drop(client, err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  return {
    async lead() {
      if (closed) {
        return false;
      }
      if (held !== undefined) {
        return true;
      }
      const client = await pool.connect();
      try {
        const { rows } = await client.query<{ locked: boolean }>(
          "select pg_try_advisory_lock($1) as locked",
          [LOKI_AUDIT_LOCK_KEY],
        );
        if (rows[0]?.locked !== true) {
          client.release();
          return false;
        }
      } catch (err) {
        client.release(err instanceof Error ? err : true);
        throw err;
      }
      client.on("error", onError);
      held = client;
      return true;
    },

    async read(q) {
      const rows = await query<AuditRowRecord>("loki_audit_read", READ_SQL, [
        q.afterId,
        q.beforeId,
        q.orgIds ?? null,
        q.limit,
      ]);
      return rows.map(
        (r): AuditLogRow => ({
          id: r.id,
          orgId: r.org_id,
          actorType: r.actor_type,
          actorId: r.actor_id,
          action: r.action,
          targetType: r.target_type,
          targetId: r.target_id,
          changesJson: r.changes_json,
          ip: r.ip,
          userAgent: r.user_agent,
          requestId: r.request_id,
          createdAt: new Date(r.created_at),
        }),
      );
    },

    async loadCursors(orgIds) {
      const rows = await query<{ org_id: string; through_ms: number; recent_ids: string[] }>(
        "loki_cursors_load",
        LOAD_SQL,
        [orgIds],
      );
      return new Map(
        rows.map((r): [string, AuditCursor] => [
          r.org_id,
          { throughMs: r.through_ms, recentIds: r.recent_ids },
        ]),
      );
    },

    async saveCursors(cursors) {
      if (cursors.length === 0) {
        return;
      }
      const records = cursors.map((c) => ({
        org_id: c.orgId,
        through_ms: c.throughMs,
        recent_ids: c.recentIds,
      }));
      await query("loki_cursors_save", SAVE_SQL, [JSON.stringify(records)]);
    },

    async close() {
      closed = true;
      const client = held;
      if (client === undefined) {
        return;
      }
      held = undefined;
      client.off("error", onError);
      try {
        await client.query("select pg_advisory_unlock($1)", [LOKI_AUDIT_LOCK_KEY]);
        client.release();
      } catch (err) {
        client.release(err instanceof Error ? err : true);
      }
    },
  };
}
