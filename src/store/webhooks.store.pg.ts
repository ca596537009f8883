import { type SQL, sql } from "drizzle-orm";
import type pg from "pg";
import {
  type ClaimedDelivery,
  type FailingEndpoint,
  MAX_ENDPOINTS_PER_ORG,
  type WebhooksStore,
} from "../domain/webhooks/webhooks.store.ts";
import {
  type DeliveryState,
  isWebhookEventType,
  type WebhookDelivery,
  type WebhookEndpoint,
  type WebhookEventType,
} from "../domain/webhooks/webhooks.types.ts";
import { newId } from "../lib/ids.ts";
import type { Executor } from "./db.ts";
import { listenOnChannel } from "./pg-listener.ts";

/*
 * The webhook tables (migration 0008_webhooks.sql) are not in src/store/schema/: the outbox write and the
 * batched outcome update are single statements drizzle's builder cannot express, so everything here is raw
 * SQL through the Executor. Timestamps are read as epoch milliseconds (float8), bigints as float8 (a
 * sequence number stays far below 2^53).
 */

/** The NOTIFY channel an outbox write signals on; PostgreSQL delivers it to listeners only when the transaction commits. */
export const WEBHOOKS_CHANNEL = "orgplane_webhooks";

/** `last_error` is for people reading the delivery log; more than this adds nothing and must not grow rows. */
const ERROR_MAX_CHARS = 1000;

function ms(column: string): SQL {
  return sql.raw(`(extract(epoch from ${column}) * 1000)::float8`);
}

function date(value: number | null): Date | null {
  return value === null ? null : new Date(value);
}

function iso(value: Date | null): string | null {
  return value === null ? null : value.toISOString();
}

function eventType(value: string): WebhookEventType {
  if (!isWebhookEventType(value)) {
    throw new Error(`webhook event has an unknown type '${value}'`);
  }
  return value;
}

function eventTypes(values: string[]): WebhookEventType[] {
  return values.map(eventType);
}

type EndpointRow = {
  id: string;
  org_id: string;
  url: string;
  description: string | null;
  event_types: string[];
  is_active: boolean;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  disabled_at: number | null;
  disabled_reason: string | null;
  failing_since: number | null;
  created_at: number;
  updated_at: number;
};

const ENDPOINT_COLUMNS = sql.join(
  [
    sql.raw("id, org_id, url, description, event_types, is_active, secret, previous_secret"),
    sql`${ms("previous_secret_expires_at")} as previous_secret_expires_at`,
    sql`${ms("disabled_at")} as disabled_at`,
    sql.raw("disabled_reason"),
    sql`${ms("failing_since")} as failing_since`,
    sql`${ms("created_at")} as created_at`,
    sql`${ms("updated_at")} as updated_at`,
  ],
  sql`, `,
);

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    orgId: row.org_id,
    url: row.url,
    description: row.description,
    eventTypes: eventTypes(row.event_types),
    isActive: row.is_active,
    secret: row.secret,
    previousSecret: row.previous_secret,
    previousSecretExpiresAt: date(row.previous_secret_expires_at),
    disabledAt: date(row.disabled_at),
    disabledReason: row.disabled_reason,
    failingSince: date(row.failing_since),
    createdAt: new Date(row.created_at),
    updatedAt: new Date(row.updated_at),
  };
}

type DeliveryRow = {
  id: string;
  org_id: string;
  endpoint_id: string;
  event_id: string;
  event_type: string;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: number | null;
  last_attempt_at: number | null;
  response_status: number | null;
  latency_ms: number | null;
  last_error: string | null;
  created_at: number;
  delivered_at: number | null;
};

const DELIVERY_COLUMNS = sql.join(
  [
    sql.raw("id, org_id, endpoint_id, event_id, event_type, state, attempts"),
    sql`${ms("next_attempt_at")} as next_attempt_at`,
    sql`${ms("last_attempt_at")} as last_attempt_at`,
    sql.raw("response_status, latency_ms, last_error"),
    sql`${ms("created_at")} as created_at`,
    sql`${ms("delivered_at")} as delivered_at`,
  ],
  sql`, `,
);

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    orgId: row.org_id,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    eventType: eventType(row.event_type),
    state: row.state,
    attempts: row.attempts,
    nextAttemptAt: date(row.next_attempt_at),
    lastAttemptAt: date(row.last_attempt_at),
    responseStatus: row.response_status,
    latencyMs: row.latency_ms,
    lastError: row.last_error,
    createdAt: new Date(row.created_at),
    deliveredAt: date(row.delivered_at),
  };
}

type ClaimedRow = {
  id: string;
  org_id: string;
  endpoint_id: string;
  attempts: number;
  event_id: string;
  event_type: string;
  sequence: number;
  event_created_at: number;
  data: string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
};

function toClaimed(row: ClaimedRow): ClaimedDelivery {
  return {
    id: row.id,
    orgId: row.org_id,
    endpointId: row.endpoint_id,
    attempts: row.attempts,
    event: {
      id: row.event_id,
      type: eventType(row.event_type),
      sequence: row.sequence,
      createdAt: new Date(row.event_created_at),
      dataJson: row.data,
    },
    endpoint: {
      url: row.url,
      secret: row.secret,
      previousSecret: row.previous_secret,
      previousSecretExpiresAt: date(row.previous_secret_expires_at),
    },
  };
}

/** The claimed deliveries (`claimed`: a CTE of their ids) joined with what an attempt needs. */
function claimedSelect(claimed: SQL): SQL {
  return sql`with claimed as (${claimed})
    select d.id, d.org_id, d.endpoint_id, d.attempts, ev.id as event_id, ev.type as event_type,
      ev.sequence::float8 as sequence, ${ms("ev.created_at")} as event_created_at, ev.data::text as data,
      e.url, e.secret, e.previous_secret, ${ms("e.previous_secret_expires_at")} as previous_secret_expires_at
    from claimed d
    join webhook_events ev on ev.id = d.event_id and ev.org_id = d.org_id
    join webhook_endpoints e on e.id = d.endpoint_id and e.org_id = d.org_id`;
}

export function createWebhooksStore(db: Executor): WebhooksStore {
  async function rows<T>(query: SQL): Promise<T[]> {
    const result = await db.execute(query);
    return result.rows as T[];
  }

  async function appendEventRow(
    event: Parameters<WebhooksStore["appendEvent"]>[0],
    deliveries: SQL,
  ): Promise<number> {
    const [row] = await rows<{ sequence: number }>(sql`
      with seq as (
        insert into webhook_sequences as s (org_id, last) values (${event.orgId}, 1)
        on conflict (org_id) do update set last = s.last + 1
        returning last
      ), ev as (
        insert into webhook_events (id, org_id, sequence, type, data, created_at)
        select ${event.id}, ${event.orgId}, seq.last, ${event.type}, ${JSON.stringify(event.data)}::jsonb,
          ${event.createdAt.toISOString()}::timestamptz
        from seq
        returning sequence
      ), dl as (${deliveries}), wake as (select pg_notify(${WEBHOOKS_CHANNEL}, ''))
      select ev.sequence::float8 as sequence from ev, wake`);
    if (row === undefined) {
      throw new Error("webhook event insert returned no row");
    }
    return row.sequence;
  }

  return {
    async appendEvent(event) {
      // Delivery ids are minted here, one per possible endpoint (an org has at most MAX_ENDPOINTS_PER_ORG):
      // the statement numbers the matching endpoints and takes the id of each one's rank.
      const ids = Array.from({ length: MAX_ENDPOINTS_PER_ORG }, () => newId("whd"));
      const created = event.createdAt.toISOString();
      const sequence = await appendEventRow(
        event,
        sql`insert into webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, state, attempts,
            next_attempt_at, created_at)
          select (${sql.param(ids)}::text[])[m.rank], ${event.orgId}, m.id, ${event.id}, ${event.type},
            'pending', 0, ${created}::timestamptz, ${created}::timestamptz
          from (
            select e.id, row_number() over (order by e.id) as rank
            from (
              -- Locked against a delete committing meanwhile (which would fail the delivery's foreign key
              -- and with it the causing change): such an endpoint is skipped instead.
              select e.id from webhook_endpoints e
              where e.org_id = ${event.orgId} and e.is_active
                and (cardinality(e.event_types) = 0 or ${event.type} = any(e.event_types))
              order by e.id
              limit ${MAX_ENDPOINTS_PER_ORG}
              for key share
            ) e
          ) m`,
      );
      return { ...event, sequence };
    },

    async appendEventFor(event, endpointId, deliveryId, leaseUntil) {
      const created = event.createdAt.toISOString();
      const sequence = await appendEventRow(
        event,
        sql`insert into webhook_deliveries (id, org_id, endpoint_id, event_id, event_type, state, attempts,
            next_attempt_at, created_at, leased_until)
          select ${deliveryId}, ${event.orgId}, e.id, ${event.id}, ${event.type}, 'pending', 0,
            ${created}::timestamptz, ${created}::timestamptz, ${leaseUntil.toISOString()}::timestamptz
          from (
            select e.id from webhook_endpoints e where e.org_id = ${event.orgId} and e.id = ${endpointId}
            for key share
          ) e`,
      );
      return { ...event, sequence };
    },

    async insertEndpoint(endpoint) {
      await db.execute(sql`
        insert into webhook_endpoints (id, org_id, url, description, event_types, is_active, secret,
          previous_secret, previous_secret_expires_at, disabled_at, disabled_reason, failing_since,
          created_at, updated_at)
        values (${endpoint.id}, ${endpoint.orgId}, ${endpoint.url}, ${endpoint.description},
          ${sql.param(endpoint.eventTypes)}::text[], ${endpoint.isActive}, ${endpoint.secret},
          ${endpoint.previousSecret}, ${iso(endpoint.previousSecretExpiresAt)}::timestamptz,
          ${iso(endpoint.disabledAt)}::timestamptz, ${endpoint.disabledReason},
          ${iso(endpoint.failingSince)}::timestamptz, ${endpoint.createdAt.toISOString()}::timestamptz,
          ${endpoint.updatedAt.toISOString()}::timestamptz)`);
    },

    async findEndpoint(orgId, endpointId) {
      const [row] = await rows<EndpointRow>(
        sql`select ${ENDPOINT_COLUMNS} from webhook_endpoints where org_id = ${orgId} and id = ${endpointId}`,
      );
      return row === undefined ? undefined : toEndpoint(row);
    },

    async findEndpointForUpdate(orgId, endpointId) {
      const [row] = await rows<EndpointRow>(
        sql`select ${ENDPOINT_COLUMNS} from webhook_endpoints where org_id = ${orgId} and id = ${endpointId}
          for update`,
      );
      return row === undefined ? undefined : toEndpoint(row);
    },

    async listEndpoints(query) {
      const before = query.before === undefined ? sql`` : sql`and id < ${query.before}`;
      const found = await rows<EndpointRow>(
        sql`select ${ENDPOINT_COLUMNS} from webhook_endpoints where org_id = ${query.orgId} ${before}
          order by id desc limit ${query.limit + 1}`,
      );
      return found.map(toEndpoint);
    },

    async updateEndpoint(orgId, endpointId, patch) {
      const sets: SQL[] = [sql`updated_at = ${patch.updatedAt.toISOString()}::timestamptz`];
      if (patch.url !== undefined) sets.push(sql`url = ${patch.url}`);
      if (patch.description !== undefined) sets.push(sql`description = ${patch.description}`);
      if (patch.eventTypes !== undefined)
        sets.push(sql`event_types = ${sql.param(patch.eventTypes)}::text[]`);
      if (patch.isActive !== undefined) sets.push(sql`is_active = ${patch.isActive}`);
      if (patch.secret !== undefined) sets.push(sql`secret = ${patch.secret}`);
      if (patch.previousSecret !== undefined) sets.push(sql`previous_secret = ${patch.previousSecret}`);
      if (patch.previousSecretExpiresAt !== undefined) {
        sets.push(sql`previous_secret_expires_at = ${iso(patch.previousSecretExpiresAt)}::timestamptz`);
      }
      if (patch.disabledAt !== undefined) sets.push(sql`disabled_at = ${iso(patch.disabledAt)}::timestamptz`);
      if (patch.disabledReason !== undefined) sets.push(sql`disabled_reason = ${patch.disabledReason}`);
      if (patch.failingSince !== undefined) {
        sets.push(sql`failing_since = ${iso(patch.failingSince)}::timestamptz`);
      }
      const [row] = await rows<EndpointRow>(
        sql`update webhook_endpoints set ${sql.join(sets, sql`, `)}
          where org_id = ${orgId} and id = ${endpointId} returning ${ENDPOINT_COLUMNS}`,
      );
      return row === undefined ? undefined : toEndpoint(row);
    },

    async deleteEndpoint(orgId, endpointId) {
      const deleted = await rows<{ id: string }>(
        sql`delete from webhook_endpoints where org_id = ${orgId} and id = ${endpointId} returning id`,
      );
      return deleted.length > 0;
    },

    async findDelivery(orgId, endpointId, deliveryId) {
      const [row] = await rows<DeliveryRow>(
        sql`select ${DELIVERY_COLUMNS} from webhook_deliveries
          where org_id = ${orgId} and endpoint_id = ${endpointId} and id = ${deliveryId}`,
      );
      return row === undefined ? undefined : toDelivery(row);
    },

    async listDeliveries(query) {
      const before = query.before === undefined ? sql`` : sql`and id < ${query.before}`;
      const state = query.state === undefined ? sql`` : sql`and state = ${query.state}`;
      const found = await rows<DeliveryRow>(
        sql`select ${DELIVERY_COLUMNS} from webhook_deliveries
          where org_id = ${query.orgId} and endpoint_id = ${query.endpointId} ${before} ${state}
          order by id desc limit ${query.limit + 1}`,
      );
      return found.map(toDelivery);
    },

    async claimDue(now, leaseUntil, limit, excludeEndpointIds = []) {
      const at = now.toISOString();
      const exclude =
        excludeEndpointIds.length === 0
          ? sql``
          : sql`and d2.endpoint_id <> all(${sql.param([...excludeEndpointIds])}::text[])`;
      const found = await rows<ClaimedRow>(
        claimedSelect(sql`
          update webhook_deliveries d set leased_until = ${leaseUntil.toISOString()}::timestamptz
          where d.id in (
            select d2.id from webhook_deliveries d2
            join webhook_endpoints e on e.id = d2.endpoint_id and e.org_id = d2.org_id
            where d2.state = 'pending' and d2.next_attempt_at <= ${at}::timestamptz
              and (d2.leased_until is null or d2.leased_until <= ${at}::timestamptz)
              and e.is_active ${exclude}
            order by d2.next_attempt_at, d2.id
            limit ${limit}
            -- Rows another worker is claiming right now are skipped, not waited for: each goes to one worker.
            for update of d2 skip locked
          )
          returning d.id, d.org_id, d.endpoint_id, d.event_id, d.attempts`),
      );
      return found.map(toClaimed);
    },

    async releaseClaims(deliveryIds) {
      if (deliveryIds.length === 0) {
        return;
      }
      await db.execute(sql`update webhook_deliveries set leased_until = null
        where id = any(${sql.param([...deliveryIds])}::text[]) and state = 'pending'`);
    },

    async claimOne(orgId, endpointId, deliveryId, now, leaseUntil) {
      const at = now.toISOString();
      const [row] = await rows<ClaimedRow>(
        claimedSelect(sql`
          update webhook_deliveries d set state = 'pending', next_attempt_at = ${at}::timestamptz,
            leased_until = ${leaseUntil.toISOString()}::timestamptz
          where d.org_id = ${orgId} and d.endpoint_id = ${endpointId} and d.id = ${deliveryId}
            and (d.leased_until is null or d.leased_until <= ${at}::timestamptz)
          returning d.id, d.org_id, d.endpoint_id, d.event_id, d.attempts`),
      );
      return row === undefined ? undefined : toClaimed(row);
    },

    async findClaimed(orgId, deliveryId) {
      const [row] = await rows<ClaimedRow>(
        claimedSelect(sql`
          select d.id, d.org_id, d.endpoint_id, d.event_id, d.attempts from webhook_deliveries d
          where d.org_id = ${orgId} and d.id = ${deliveryId}`),
      );
      return row === undefined ? undefined : toClaimed(row);
    },

    async recordOutcomes(outcomes, disableBefore) {
      if (outcomes.length === 0) {
        return [];
      }
      const input = JSON.stringify(
        outcomes.map((o) => ({
          id: o.id,
          org_id: o.orgId,
          endpoint_id: o.endpointId,
          previous_attempts: o.previousAttempts,
          state: o.state,
          attempts: o.attempts,
          next_attempt_at: iso(o.nextAttemptAt),
          last_attempt_at: o.lastAttemptAt.toISOString(),
          response_status: o.responseStatus,
          latency_ms: Math.round(o.latencyMs),
          last_error: o.lastError?.slice(0, ERROR_MAX_CHARS) ?? null,
          delivered_at: iso(o.deliveredAt),
        })),
      );
      // One statement: the deliveries, then each endpoint's health from the outcomes that applied.
      const found = await rows<{ org_id: string; endpoint_id: string; failing_since: number }>(sql`
        with v as (
          select * from json_to_recordset(${input}::json) as v(id text, org_id text, endpoint_id text,
            previous_attempts int, state text, attempts int, next_attempt_at timestamptz,
            last_attempt_at timestamptz, response_status int, latency_ms int, last_error text,
            delivered_at timestamptz)
        ), applied as (
          update webhook_deliveries d set state = v.state, attempts = v.attempts,
            next_attempt_at = v.next_attempt_at, last_attempt_at = v.last_attempt_at,
            response_status = v.response_status, latency_ms = v.latency_ms, last_error = v.last_error,
            delivered_at = coalesce(v.delivered_at, d.delivered_at), leased_until = null
          from v
          where d.id = v.id and d.org_id = v.org_id and d.state = 'pending' and d.attempts = v.previous_attempts
          returning v.org_id, v.endpoint_id, v.state, v.last_attempt_at
        ), health as (
          select org_id, endpoint_id, bool_or(state = 'delivered') as succeeded,
            min(last_attempt_at) as first_failure
          from applied group by org_id, endpoint_id
        ), updated as (
          update webhook_endpoints e set failing_since =
            case when h.succeeded then null else coalesce(e.failing_since, h.first_failure) end
          from health h
          where e.org_id = h.org_id and e.id = h.endpoint_id
            -- Untouched rows stay unwritten: a healthy endpoint is not rewritten on every success.
            and (case when h.succeeded then e.failing_since is not null else e.failing_since is null end)
          returning e.org_id, e.id, e.failing_since
        )
        select e.org_id, e.id as endpoint_id,
          ${ms("coalesce(u.failing_since, e.failing_since)")} as failing_since
        from health h
        join webhook_endpoints e on e.org_id = h.org_id and e.id = h.endpoint_id
        left join updated u on u.org_id = e.org_id and u.id = e.id
        where not h.succeeded and e.is_active
          and coalesce(u.failing_since, e.failing_since) <= ${disableBefore.toISOString()}::timestamptz`);
      return found.map(
        (r): FailingEndpoint => ({
          orgId: r.org_id,
          endpointId: r.endpoint_id,
          failingSince: new Date(r.failing_since),
        }),
      );
    },

    async disableEndpoint(orgId, endpointId, disableBefore, at, reason) {
      const [row] = await rows<EndpointRow>(sql`
        update webhook_endpoints set is_active = false, disabled_at = ${at.toISOString()}::timestamptz,
          disabled_reason = ${reason}, updated_at = ${at.toISOString()}::timestamptz
        where org_id = ${orgId} and id = ${endpointId} and is_active
          and failing_since <= ${disableBefore.toISOString()}::timestamptz
        returning ${ENDPOINT_COLUMNS}`);
      return row === undefined ? undefined : toEndpoint(row);
    },

    async nextDueAt() {
      const [row] = await rows<{ at: number | null }>(sql`
        select ${ms("min(greatest(d.next_attempt_at, coalesce(d.leased_until, d.next_attempt_at)))")} as at
        from (
          select next_attempt_at, leased_until, endpoint_id, org_id from webhook_deliveries
          where state = 'pending' order by next_attempt_at limit 100
        ) d
        join webhook_endpoints e on e.id = d.endpoint_id and e.org_id = d.org_id
        where e.is_active`);
      return row?.at == null ? undefined : new Date(row.at);
    },

    async finishedSince(orgId, since) {
      const [row] = await rows<{ delivered: number; failed: number }>(sql`
        select count(*) filter (where state = 'delivered')::int as delivered,
          count(*) filter (where state = 'failed')::int as failed
        from webhook_deliveries
        where org_id = ${orgId} and state <> 'pending' and last_attempt_at >= ${since.toISOString()}::timestamptz`);
      return { delivered: row?.delivered ?? 0, failed: row?.failed ?? 0 };
    },

    async ownerEmails(orgId) {
      const found = await rows<{ email: string }>(sql`
        select u.email from memberships m join users u on u.id = m.user_id
        where m.org_id = ${orgId} and m.role = 'owner' and u.email is not null
        order by u.id`);
      return found.map((r) => r.email);
    },
  };
}

/** A listener that lost its connection tries again after this long; the minute sweep covers the gap. */
const RELISTEN_MS = 5000;

/** Tells the delivery engine that something may be due: a commit that wrote an event, in any process. */
export type WebhookWakeSource = {
  start(onWake: () => void): Promise<void>;
  stop(): Promise<void>;
};

/**
 * Wakes this process's delivery engine when any process commits an event: one pooled connection per process
 * stays in LISTEN. Notifications can be missed while it reconnects, which is why a sweep runs every minute.
 */
export function createWebhookWakeSource(pool: pg.Pool, onError: (err: Error) => void): WebhookWakeSource {
  const listener = listenOnChannel(pool, WEBHOOKS_CHANNEL, { retryMs: RELISTEN_MS, onError });
  return {
    // Whatever was written while nobody listened is due as soon as the listener is back.
    start: (onWake) => listener.start({ notified: onWake, connected: onWake, disconnected: () => {} }),
    stop: () => listener.stop(),
  };
}
