-- Outbound webhooks (docs/adr/0005-webhook-delivery.md). The webhook tables are written by hand, like the usage
-- tables (not in src/store/schema/): webhooks.store.pg.ts reads and writes them with raw SQL, in statements
-- drizzle's builder cannot express (the outbox CTE, batched outcome updates).
--
-- For the `api_key.expiring` event: set once the event was emitted for a key, so a sweep emits it once.
ALTER TABLE "api_keys" ADD COLUMN "expiring_notified_at" timestamp with time zone;
--> statement-breakpoint
-- The hourly sweep's read: live keys not yet announced, by expiry (a few rows, not the whole table).
CREATE INDEX "api_keys_expiring_idx" ON "api_keys" ("expires_at")
	WHERE "revoked_at" IS NULL AND "expiring_notified_at" IS NULL AND "expires_at" IS NOT NULL;
--> statement-breakpoint
-- An organization's endpoints. The secrets are kept in clear: every delivery is signed with them (HMAC), so
-- a hash would not do; they are never logged nor returned after create/rotate.
CREATE TABLE "webhook_endpoints" (
	"id" text COLLATE "C" PRIMARY KEY,
	"org_id" text COLLATE "C" NOT NULL REFERENCES "organizations" ("id"),
	"url" text NOT NULL,
	"description" text,
	"event_types" text[] NOT NULL DEFAULT '{}',
	"is_active" boolean NOT NULL,
	"secret" text NOT NULL,
	"previous_secret" text,
	"previous_secret_expires_at" timestamptz,
	"disabled_at" timestamptz,
	"disabled_reason" text,
	"failing_since" timestamptz,
	"created_at" timestamptz NOT NULL,
	"updated_at" timestamptz NOT NULL
);
--> statement-breakpoint
CREATE INDEX "webhook_endpoints_org_id_id" ON "webhook_endpoints" ("org_id", "id");
--> statement-breakpoint
-- The last sequence number given to each organization's events. Taking the next one is an upsert on this
-- row, which holds its lock until commit: one organization's event writers take turns, so committed
-- numbers have no gaps and follow commit order. Different organizations never wait for each other.
CREATE TABLE "webhook_sequences" (
	"org_id" text COLLATE "C" PRIMARY KEY,
	"last" bigint NOT NULL
);
--> statement-breakpoint
-- The outbox: one row per event, written in the transaction of the change that caused it.
CREATE TABLE "webhook_events" (
	"id" text COLLATE "C" PRIMARY KEY,
	"org_id" text COLLATE "C" NOT NULL,
	"sequence" bigint NOT NULL,
	"type" text COLLATE "C" NOT NULL,
	"data" jsonb NOT NULL,
	"created_at" timestamptz NOT NULL,
	UNIQUE ("org_id", "sequence")
);
--> statement-breakpoint
-- One event owed to one endpoint: the durable work queue. `leased_until` hides a claimed row from other
-- claimers while its attempt runs; a row claimed by a process that died is claimed again once it passes.
-- Deliveries go with their endpoint when it is deleted.
CREATE TABLE "webhook_deliveries" (
	"id" text COLLATE "C" PRIMARY KEY,
	"org_id" text COLLATE "C" NOT NULL,
	"endpoint_id" text COLLATE "C" NOT NULL REFERENCES "webhook_endpoints" ("id") ON DELETE CASCADE,
	"event_id" text COLLATE "C" NOT NULL REFERENCES "webhook_events" ("id"),
	"event_type" text COLLATE "C" NOT NULL,
	"state" text COLLATE "C" NOT NULL,
	"attempts" integer NOT NULL DEFAULT 0,
	"next_attempt_at" timestamptz,
	"last_attempt_at" timestamptz,
	"response_status" integer,
	"latency_ms" integer,
	"last_error" text,
	"created_at" timestamptz NOT NULL,
	"delivered_at" timestamptz,
	"leased_until" timestamptz
) WITH (fillfactor = 80);
--> statement-breakpoint
-- The workers' claim: pending rows by due time, and nothing else (delivered and failed rows leave the index).
CREATE INDEX "webhook_deliveries_due" ON "webhook_deliveries" ("next_attempt_at") WHERE "state" = 'pending';
--> statement-breakpoint
-- An endpoint's delivery log, newest first (ids are time-sortable).
CREATE INDEX "webhook_deliveries_org_endpoint_id" ON "webhook_deliveries" ("org_id", "endpoint_id", "id");
--> statement-breakpoint
-- The 7-day success rate of the usage view: finished deliveries by their last attempt.
CREATE INDEX "webhook_deliveries_org_finished" ON "webhook_deliveries" ("org_id", "last_attempt_at")
	WHERE "state" <> 'pending';
--> statement-breakpoint
CREATE INDEX "webhook_deliveries_event_id" ON "webhook_deliveries" ("event_id");
