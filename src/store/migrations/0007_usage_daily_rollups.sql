-- Daily rollups: the hourly rollups (0006_usage.sql) summed per UTC day, written by the same statement as
-- the hourly rows, so a month's query reads ~30 rows per (meter, project, key) instead of ~720: whole days
-- come from here and only the partial days at a range's edges from usage_rollups. Written by hand, like
-- 0006 (not in src/store/schema/). `day` is the UTC day's start; `last`/`last_at` are the day's latest event
-- (ties: the larger value), as in the hourly rows. Rows of the current day are updated constantly: the free
-- space lets those be HOT updates.
--
-- Rows before this migration are filled from the hourly rollups, so the two tables agree from the start: the
-- hourly table is locked against writes first, so batches still in flight are waited for and counted. A
-- server of the previous version ingesting after this migration would write hourly rows only: stop those
-- before migrating.
CREATE TABLE "usage_rollups_daily" (
	"org_id" text COLLATE "C" NOT NULL,
	"day" timestamptz NOT NULL,
	"meter" text COLLATE "C" NOT NULL,
	"project_id" text COLLATE "C" NOT NULL,
	"key_id" text COLLATE "C" NOT NULL,
	"sum" numeric NOT NULL,
	"count" bigint NOT NULL,
	"max" numeric NOT NULL,
	"last" numeric NOT NULL,
	"last_at" timestamptz NOT NULL,
	"credits" numeric NOT NULL,
	PRIMARY KEY ("org_id", "day", "meter", "project_id", "key_id")
) WITH (fillfactor = 80);
--> statement-breakpoint
LOCK TABLE "usage_rollups" IN SHARE MODE;
--> statement-breakpoint
INSERT INTO "usage_rollups_daily" ("org_id", "day", "meter", "project_id", "key_id", "sum", "count", "max",
	"last", "last_at", "credits")
SELECT "org_id", date_bin('1 day', "hour", 'epoch'), "meter", "project_id", "key_id", sum("sum"), sum("count"),
	max("max"), (array_agg("last" ORDER BY "last_at" DESC, "last" DESC))[1], max("last_at"), sum("credits")
FROM "usage_rollups"
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5;
