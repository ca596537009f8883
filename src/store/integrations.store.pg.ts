import { type SQL, sql } from "drizzle-orm";
import type { IntegrationsStore, StoredIntegration } from "../domain/integrations/integrations.store.ts";
import { INTEGRATION_KINDS, type IntegrationKind } from "../domain/integrations/integrations.types.ts";
import type { Executor } from "./db.ts";
import { executePrepared } from "./prepared.ts";

/*
 * The integration tables (migration 0009_integrations.sql) are not in src/store/schema/: the batched result
 * update is one statement over json_to_recordset, so everything here is raw SQL through the Executor, as in
 * webhooks.store.pg.ts. Timestamps are read as epoch milliseconds (float8), counters as float8 (far below 2^53).
 */

function ms(column: string): SQL {
  return sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);
}

function date(value: number | null): Date | null {
  return value === null ? null : new Date(value);
}

function kind(value: string): IntegrationKind {
  const found = INTEGRATION_KINDS.find((k) => k === value);
  if (found === undefined) {
    throw new Error(`integration has an unknown kind '${value}'`);
  }
  return found;
}

type Row = {
  org_id: string;
  kind: string;
  endpoint: string;
  client_id: string;
  token_ciphertext: string;
  token_last4: string | null;
  created_at: number;
  updated_at: number;
  last_success_at: number | null;
  last_error: string | null;
  last_error_at: number | null;
  dropped_batches: number;
  dropped_lines: number;
};

const COLUMNS = sql.join(
  [
    sql.raw("i.org_id, i.kind, i.endpoint, i.client_id, i.token_ciphertext, i.token_last4"),
    sql`${ms("i.created_at")} as created_at`,
    sql`${ms("i.updated_at")} as updated_at`,
    sql`${ms("i.last_success_at")} as last_success_at`,
    sql.raw("i.last_error"),
    sql`${ms("i.last_error_at")} as last_error_at`,
    sql.raw("i.dropped_batches::float8 as dropped_batches, i.dropped_lines::float8 as dropped_lines"),
  ],
  sql`, `,
);

/** The rows `listActive` answers and `activeDigest` sums up: one kind's, of organizations not deleted. */
function activeOf(integrationKind: IntegrationKind): SQL {
  return sql`from org_integrations i join organizations o on o.id = i.org_id
    where i.kind = ${integrationKind} and o.status <> 'deleted'`;
}

function toIntegration(row: Row): StoredIntegration {
  return {
    orgId: row.org_id,
    kind: kind(row.kind),
    endpoint: row.endpoint,
    clientId: row.client_id,
    tokenCiphertext: row.token_ciphertext,
    tokenLast4: row.token_last4,
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
    lastSuccessAt: date(row.last_success_at),
    lastError: row.last_error,
    lastErrorAt: date(row.last_error_at),
    droppedBatches: row.dropped_batches,
    droppedLines: row.dropped_lines,
  };
}

export function createIntegrationsStore(db: Executor): IntegrationsStore {
  async function rows<T>(query: SQL): Promise<T[]> {
    const result = await db.execute(query);
    return result.rows as T[];
  }

  return {
    async listForOrg(orgId) {
      const found = await rows<Row>(
        sql`select ${COLUMNS} from org_integrations i where i.org_id = ${orgId} order by i.kind`,
      );
      return found.map(toIntegration);
    },

    async upsert(write) {
      const at = write.at.toISOString();
      await db.execute(sql`
        insert into org_integrations as i (org_id, kind, endpoint, client_id, token_ciphertext, token_last4,
          created_at, updated_at)
        values (${write.orgId}, ${write.kind}, ${write.endpoint}, ${write.clientId}, ${write.tokenCiphertext},
          ${write.tokenLast4}, ${at}::timestamptz, ${at}::timestamptz)
        on conflict (org_id, kind) do update set endpoint = excluded.endpoint, client_id = excluded.client_id,
          token_ciphertext = excluded.token_ciphertext, token_last4 = excluded.token_last4,
          updated_at = excluded.updated_at, last_success_at = null, last_error = null, last_error_at = null,
          dropped_batches = 0, dropped_lines = 0`);
    },

    async delete(orgId, integrationKind) {
      const deleted = await rows<{ kind: string }>(
        sql`delete from org_integrations where org_id = ${orgId} and kind = ${integrationKind} returning kind`,
      );
      return deleted.length > 0;
    },

    async listActive(integrationKind) {
      const found = await rows<Row>(sql`
        select ${COLUMNS} ${activeOf(integrationKind)}
        order by i.org_id`);
      return found.map(toIntegration);
    },

    async activeDigest(integrationKind) {
      // Order-free: the rows' 64-bit hashes summed exactly (numeric), with their count; no sort, no text of
      // every row. Every write of an integration seals its token again under a fresh IV, so the ciphertext
      // changes with each write (a re-sealing key rotation included); the other configured columns are hashed
      // too, each length-prefixed so no two different rows read as the same text. Two different sets of rows
      // share a digest with a chance of about 2^-64.
      const [found] = await rows<{ digest: string }>(sql`
        select count(*) || ':' || coalesce(sum(hashtextextended(
          length(i.org_id) || ':' || i.org_id || length(i.endpoint) || ':' || i.endpoint ||
          length(i.client_id) || ':' || i.client_id || i.token_ciphertext, 0)::numeric), 0) as digest
        ${activeOf(integrationKind)}`);
      if (found === undefined) {
        throw new Error("the integrations digest query answered no row");
      }
      return found.digest;
    },

    async recordResults(results, at, refreshMs) {
      if (results.length === 0) {
        return;
      }
      const input = JSON.stringify(
        results.map((r) => ({
          org_id: r.orgId,
          kind: r.kind,
          ok: r.ok,
          error: r.error,
          dropped_batches: Math.max(0, Math.round(r.droppedBatches)),
          dropped_lines: Math.max(0, Math.round(r.droppedLines)),
        })),
      );
      const when = at.toISOString();
      const atMs = at.getTime();
      const refresh = Math.max(0, Math.round(refreshMs));
      /**
       * Whether `column` was written in an earlier refresh window than `at`. Each integration's windows are
       * offset by a phase of its own (a hash of its org and kind), so integrations whose times were written
       * together (a start, an outage ended at once) are written again spread over the window, not together.
       * A refresh of 0 writes every time (the null division makes the comparison null, the `or` true).
       */
      const earlierWindow = (column: string): SQL => sql`(${refresh}::float8 = 0
        or floor((${atMs}::float8 + d.phase_ms) / nullif(${refresh}::float8, 0))
          > floor((${ms(column)} + d.phase_ms) / nullif(${refresh}::float8, 0)))`;
      // One statement for every organization of an interval. Rows removed meanwhile simply match nothing; a
      // row none of whose columns would change is not written at all (no new row version, no WAL). Prepared:
      // its text never changes, and the exporters run it every second or so.
      await executePrepared(
        db,
        "integrations_results",
        sql`
        with v as (
          select org_id, kind, bool_or(ok) as any_ok, bool_or(not ok) as any_failed,
            -- Several results of one integration in a call: the last failure's message is kept.
            coalesce((array_agg(error order by ord desc) filter (where not ok))[1], 'failed') as error,
            sum(dropped_batches)::bigint as dropped_batches, sum(dropped_lines)::bigint as dropped_lines,
            (hashtextextended(org_id || ':' || kind, 0) & 2147483647)::float8 / 2147483648
              * ${refresh}::float8 as phase_ms
          from rows from (json_to_recordset(${input}::json) as (org_id text, kind text, ok boolean,
            error text, dropped_batches bigint, dropped_lines bigint)) with ordinality
            as r(org_id, kind, ok, error, dropped_batches, dropped_lines, ord)
          group by org_id, kind
        ),
        s as (
          -- A success is written when there is none yet, when the integration was failing (an error as late
          -- as the last success), or in a later refresh window than the one written; a failure likewise, or
          -- when its message changed. So the later of the two times always tells the current state.
          select d.*,
            d.any_ok and (i.last_success_at is null or coalesce(i.last_error_at >= i.last_success_at, false)
              or ${earlierWindow("i.last_success_at")}) as set_success,
            d.any_failed and (i.last_error_at is null or i.last_error is distinct from d.error
              or coalesce(i.last_success_at >= i.last_error_at, false)
              or ${earlierWindow("i.last_error_at")}) as set_error
          from v d join org_integrations i on i.org_id = d.org_id and i.kind = d.kind
        )
        update org_integrations i set
          last_success_at = case when s.set_success then ${when}::timestamptz else i.last_success_at end,
          last_error = case when s.set_error then s.error else i.last_error end,
          last_error_at = case when s.set_error then ${when}::timestamptz else i.last_error_at end,
          dropped_batches = i.dropped_batches + s.dropped_batches,
          dropped_lines = i.dropped_lines + s.dropped_lines
        from s
        where i.org_id = s.org_id and i.kind = s.kind
          and (s.set_success or s.set_error or s.dropped_batches > 0 or s.dropped_lines > 0)`,
      );
    },

    async sealedKeySamples() {
      const found = await rows<{
        key_id: string;
        org_id: string;
        kind: string;
        token_ciphertext: string;
      }>(sql`
        select distinct on (split_part(token_ciphertext, ':', 2)) split_part(token_ciphertext, ':', 2) as key_id,
          org_id, kind, token_ciphertext
        from org_integrations
        order by split_part(token_ciphertext, ':', 2), org_id, kind`);
      return found.map((r) => ({
        keyId: r.key_id,
        orgId: r.org_id,
        kind: kind(r.kind),
        tokenCiphertext: r.token_ciphertext,
      }));
    },

    async listSealedWithout(keyId, limit) {
      const found = await rows<{ org_id: string; kind: string; token_ciphertext: string }>(sql`
        select org_id, kind, token_ciphertext from org_integrations
        where split_part(token_ciphertext, ':', 2) <> ${keyId}
        order by org_id, kind limit ${limit}`);
      return found.map((r) => ({ orgId: r.org_id, kind: kind(r.kind), tokenCiphertext: r.token_ciphertext }));
    },

    async replaceCiphertext(orgId, integrationKind, from, to) {
      const updated = await rows<{ kind: string }>(sql`
        update org_integrations set token_ciphertext = ${to}
        where org_id = ${orgId} and kind = ${integrationKind} and token_ciphertext = ${from}
        returning kind`);
      return updated.length > 0;
    },

    async listCanaries() {
      const found = await rows<{ key_id: string; ciphertext: string }>(
        sql`select key_id, ciphertext from secret_key_canaries order by key_id`,
      );
      return found.map((r) => ({ keyId: r.key_id, ciphertext: r.ciphertext }));
    },

    async insertCanary(keyId, ciphertext, at) {
      await db.execute(sql`
        insert into secret_key_canaries (key_id, ciphertext, created_at)
        values (${keyId}, ${ciphertext}, ${at.toISOString()}::timestamptz)
        on conflict (key_id) do nothing`);
    },
  };
}
