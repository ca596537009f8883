-- Per-organization observability export (docs/integrations.md). Written by hand, like the webhook tables (not
-- in src/store/schema/): integrations.store.pg.ts reads and writes them with raw SQL, the exporters' batched
-- result update being one statement over json_to_recordset.
--
-- One row per organization and kind (prometheus, loki). The token is sealed with AES-256-GCM under
-- ORGPLANE_SECRET_KEY (`v1:<key-id>:<iv>:<ciphertext>`, src/infra/secret-box.ts), never stored in clear;
-- its last four characters are kept apart, for display.
CREATE TABLE "org_integrations" (
	"org_id" text COLLATE "C" NOT NULL REFERENCES "organizations" ("id"),
	"kind" text COLLATE "C" NOT NULL CHECK ("kind" in ('prometheus', 'loki')),
	"endpoint" text NOT NULL,
	"client_id" text NOT NULL,
	"token_ciphertext" text NOT NULL,
	"token_last4" text,
	"created_at" timestamptz NOT NULL,
	"updated_at" timestamptz NOT NULL,
	"last_success_at" timestamptz,
	"last_error" text,
	"last_error_at" timestamptz,
	"dropped_batches" bigint NOT NULL DEFAULT 0,
	"dropped_lines" bigint NOT NULL DEFAULT 0,
	PRIMARY KEY ("org_id", "kind")
);
--> statement-breakpoint
-- The exporters read every integration of a kind each interval.
CREATE INDEX "org_integrations_kind" ON "org_integrations" ("kind");
--> statement-breakpoint
-- A known value sealed under each key id ever configured: start-up opens the ones of its key ids, so a key id
-- given other key material stops the server before it seals anything under it (docs/integrations.md).
CREATE TABLE "secret_key_canaries" (
	"key_id" text COLLATE "C" PRIMARY KEY,
	"ciphertext" text NOT NULL,
	"created_at" timestamptz NOT NULL
);
--> statement-breakpoint
-- The Loki exporter's place in each organization's audit trail (docs/integrations.md, "Logs (Loki)"): every
-- event minted before through_at was sent or dropped (and counted), except events whose transaction committed
-- late, which a restart reads again from a little earlier; recent_ids are those of that stretch already
-- sent, so a restart does not send them twice. Written only by the process holding the exporter's lock.
CREATE TABLE "loki_audit_cursors" (
	"org_id" text COLLATE "C" PRIMARY KEY,
	"through_at" timestamptz NOT NULL,
	"recent_ids" text[] NOT NULL DEFAULT '{}',
	"updated_at" timestamptz NOT NULL
);
