-- Usage metering. Written by hand: drizzle-kit cannot express PARTITION BY RANGE, so none of these tables
-- is in src/store/schema/ (usage.store.pg.ts queries them with raw SQL). No foreign keys: ingestion writes
-- thousands of rows a second and the service has already checked the org, projects and keys it names.
--
-- Text key columns use the "C" collation: byte order is all a key needs, and it compares far faster than a
-- linguistic collation on every index insert and lookup.
--
-- Exact deduplication of (org, event id) for at least the dedup window (35 days), pruned by received_at.
-- Rows arrive in received_at order, so a BRIN index finds the old ones cheaply at almost no insert cost.
CREATE TABLE "usage_dedup" (
	"org_id" text COLLATE "C" NOT NULL,
	"event_id" text COLLATE "C" NOT NULL,
	"received_at" timestamptz NOT NULL,
	PRIMARY KEY ("org_id", "event_id")
);
--> statement-breakpoint
CREATE INDEX "usage_dedup_received_at" ON "usage_dedup" USING brin ("received_at");
--> statement-breakpoint
-- The raw events, one partition per UTC month of event time (usage_events_YYYY_MM, created on demand by
-- the store, dropped whole when past retention). No indexes: queries read the rollups, never these.
CREATE TABLE "usage_events" (
	"org_id" text NOT NULL,
	"event_id" text NOT NULL,
	"project_id" text,
	"key_id" text,
	"meter" text NOT NULL,
	"time" timestamptz NOT NULL,
	"value" numeric NOT NULL,
	"unique_value" text,
	"credits" numeric NOT NULL,
	"properties" jsonb NOT NULL,
	"received_at" timestamptz NOT NULL
) PARTITION BY RANGE ("time");
--> statement-breakpoint
-- Hourly rollups per org, UTC hour, meter, project and key ('' = none: a key column cannot be null).
-- The key leads with (org_id, hour) so one org's range of hours is one index range scan. `last` is the
-- value of the hour's latest event by time (ties: the larger value), `last_at` that time. Rows of the
-- current hour are updated constantly: the free space lets those be HOT updates.
CREATE TABLE "usage_rollups" (
	"org_id" text COLLATE "C" NOT NULL,
	"hour" timestamptz NOT NULL,
	"meter" text COLLATE "C" NOT NULL,
	"project_id" text COLLATE "C" NOT NULL,
	"key_id" text COLLATE "C" NOT NULL,
	"sum" numeric NOT NULL,
	"count" bigint NOT NULL,
	"max" numeric NOT NULL,
	"last" numeric NOT NULL,
	"last_at" timestamptz NOT NULL,
	"credits" numeric NOT NULL,
	PRIMARY KEY ("org_id", "hour", "meter", "project_id", "key_id")
) WITH (fillfactor = 80);
--> statement-breakpoint
-- The latest hour of a meter per project before some time (a gauge's carried value) without reading the
-- org's whole history.
CREATE INDEX "usage_rollups_meter_project" ON "usage_rollups" ("org_id", "meter", "project_id", "hour");
--> statement-breakpoint
-- The distinct values of unique_count meters per org, meter, UTC hour, project and key ('' = none).
CREATE TABLE "usage_uniques" (
	"org_id" text COLLATE "C" NOT NULL,
	"meter" text COLLATE "C" NOT NULL,
	"hour" timestamptz NOT NULL,
	"project_id" text COLLATE "C" NOT NULL,
	"key_id" text COLLATE "C" NOT NULL,
	"value" text COLLATE "C" NOT NULL,
	PRIMARY KEY ("org_id", "meter", "hour", "project_id", "key_id", "value")
);
--> statement-breakpoint
-- The latest value of each gauge (`last`) meter per org and project ('' = the org itself), by event time
-- (ties: the larger value).
CREATE TABLE "usage_gauges" (
	"org_id" text COLLATE "C" NOT NULL,
	"meter" text COLLATE "C" NOT NULL,
	"project_id" text COLLATE "C" NOT NULL,
	"value" numeric NOT NULL,
	"time" timestamptz NOT NULL,
	PRIMARY KEY ("org_id", "meter", "project_id")
) WITH (fillfactor = 80);
