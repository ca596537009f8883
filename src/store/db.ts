import type { ExtractTablesWithRelations } from "drizzle-orm";
import { drizzle, type NodePgDatabase, type NodePgQueryResultHKT } from "drizzle-orm/node-postgres";
import type { PgDatabase } from "drizzle-orm/pg-core";
import pg from "pg";
import type { Stores, Transactor } from "../domain/stores.ts";
import { createAlertsStore } from "./alerts.store.pg.ts";
import { createApiKeysStore, createOperatorKeysStore } from "./api-keys.store.pg.ts";
import { createAuditStore } from "./audit.store.pg.ts";
import { createCreditsStore } from "./credits.store.pg.ts";
import { createIdempotencyStore } from "./idempotency.store.pg.ts";
import { createIntegrationsStore } from "./integrations.store.pg.ts";
import { createInvitationsStore } from "./invitations.store.pg.ts";
import { createMailOutboxStore } from "./mail.store.pg.ts";
import { createMembershipsStore, createUsersStore } from "./members.store.pg.ts";
import { createOrgsStore } from "./orgs.store.pg.ts";
import { createPlanVersionsStore } from "./plan-versions.store.pg.ts";
import { createProjectsStore } from "./projects.store.pg.ts";
import { createRateLimitOverridesStore } from "./rate-limit-overrides.store.pg.ts";
import * as schema from "./schema/index.ts";
import { createSpendingLimitsStore } from "./spending-limits.store.pg.ts";
import { createBillingSyncStore } from "./stripe.store.pg.ts";
import { createQuotaUsageStore, createSubscriptionsStore } from "./subscriptions.store.pg.ts";
import { createUsageStore } from "./usage.store.pg.ts";
import { createWebhooksStore } from "./webhooks.store.pg.ts";

/** A pool connection or an open transaction: every store runs its queries through one. */
export type Executor = PgDatabase<
  NodePgQueryResultHKT,
  typeof schema,
  ExtractTablesWithRelations<typeof schema>
>;

export type Database = {
  pool: pg.Pool;
  db: NodePgDatabase<typeof schema>;
  stores: Stores;
  transactor: Transactor;
  ping(timeoutMs: number): Promise<void>;
  close(): Promise<void>;
};

export function createStores(exec: Executor): Stores {
  return {
    orgs: createOrgsStore(exec),
    apiKeys: createApiKeysStore(exec),
    operatorKeys: createOperatorKeysStore(exec),
    audit: createAuditStore(exec),
    idempotency: createIdempotencyStore(exec),
    users: createUsersStore(exec),
    memberships: createMembershipsStore(exec),
    invitations: createInvitationsStore(exec),
    mailOutbox: createMailOutboxStore(exec),
    projects: createProjectsStore(exec),
    billing: createBillingSyncStore(exec),
    planVersions: createPlanVersionsStore(exec),
    subscriptions: createSubscriptionsStore(exec),
    quotaUsage: createQuotaUsageStore(exec),
    rateLimitOverrides: createRateLimitOverridesStore(exec),
    spendingLimits: createSpendingLimitsStore(exec),
    alerts: createAlertsStore(exec),
    credits: createCreditsStore(exec),
    usage: createUsageStore(exec),
    webhooks: createWebhooksStore(exec),
    integrations: createIntegrationsStore(exec),
  };
}

/** A closing connection normally reports back within milliseconds; this only bounds a broken one. */
const CLOSE_WAIT_MS = 2000;

export type DatabaseOptions = {
  url: string;
  poolMax: number;
  onPoolError: (err: Error) => void;
};

export function openDatabase(options: DatabaseOptions): Database {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    // Fail fast when PostgreSQL is down, so clients get a 503 promptly instead of hanging.
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    application_name: "orgplane",
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on("error", options.onPoolError);
  const db = drizzle(pool, { schema });
  return {
    pool,
    db,
    stores: createStores(db),
    transactor: {
      transaction: (fn) => db.transaction((tx) => fn(createStores(tx))),
    },
    async ping(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`database ping timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([pool.query("select 1"), timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
    async close() {
      // pool.end() resolves once it has asked every connection to end, not once they have; a database stopped
      // right after (the embedded cluster) would cut live sessions and log errors. Wait for the sockets too,
      // bounded, so a connection that never reports back cannot hold up a shutdown.
      const open = pool.totalCount;
      let timer: NodeJS.Timeout | undefined;
      const allRemoved = new Promise<void>((resolve) => {
        let removed = 0;
        pool.on("remove", () => {
          removed += 1;
          if (removed >= open) {
            resolve();
          }
        });
        timer = setTimeout(resolve, CLOSE_WAIT_MS);
      });
      await pool.end();
      if (open > 0) {
        await allRemoved;
      }
      clearTimeout(timer);
    },
  };
}
