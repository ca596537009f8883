CREATE TABLE "alerts" (
	"id" text PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"type" text NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	CONSTRAINT "alerts_org_id_type_period_start_key" UNIQUE("org_id","type","period_start")
);
--> statement-breakpoint
CREATE TABLE "credit_accounts" (
	"org_id" text PRIMARY KEY NOT NULL,
	"balance" numeric(36, 18) DEFAULT '0' NOT NULL,
	"overdraft" numeric(36, 18) DEFAULT '0' NOT NULL,
	"overdrawn" numeric(36, 18) DEFAULT '0' NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"period_end" timestamp with time zone NOT NULL,
	"period_used" numeric(36, 18) DEFAULT '0' NOT NULL,
	"period_allocation" numeric(36, 18),
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_accounts_overdraft_check" CHECK ("credit_accounts"."overdraft" >= 0),
	CONSTRAINT "credit_accounts_overdrawn_check" CHECK ("credit_accounts"."overdrawn" >= 0),
	CONSTRAINT "credit_accounts_balance_check" CHECK ("credit_accounts"."balance" >= -"credit_accounts"."overdraft")
);
--> statement-breakpoint
CREATE TABLE "credit_entries" (
	"id" text PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"type" text NOT NULL,
	"amount" numeric(36, 18) NOT NULL,
	"balance_after" numeric(36, 18) NOT NULL,
	"overdrawn" numeric(36, 18) DEFAULT '0' NOT NULL,
	"grant_id" text,
	"allocations" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"source" text,
	"reference" text,
	"reason" text,
	"reverses_id" text,
	"actor_type" text NOT NULL,
	"actor_id" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_entries_type_check" CHECK ("credit_entries"."type" in ('grant', 'debit', 'adjustment', 'reversal', 'expiry'))
);
--> statement-breakpoint
CREATE TABLE "credit_grants" (
	"id" text PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"source" text NOT NULL,
	"amount" numeric(36, 18) NOT NULL,
	"remaining" numeric(36, 18) NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"expires_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"period_start" timestamp with time zone,
	"reference" text,
	"reason" text,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_grants_source_check" CHECK ("credit_grants"."source" in ('plan_allocation', 'purchase', 'promotional', 'adjustment')),
	CONSTRAINT "credit_grants_remaining_check" CHECK ("credit_grants"."remaining" >= 0 and "credit_grants"."remaining" <= "credit_grants"."amount")
);
--> statement-breakpoint
CREATE TABLE "credit_periods" (
	"org_id" text NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"period_end" timestamp with time zone NOT NULL,
	"allocation" numeric(36, 18),
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_periods_org_id_period_start_pk" PRIMARY KEY("org_id","period_start")
);
--> statement-breakpoint
CREATE TABLE "spending_limits" (
	"org_id" text PRIMARY KEY NOT NULL,
	"unit" text NOT NULL,
	"soft_limit" numeric(36, 18),
	"hard_limit" numeric(36, 18),
	"thresholds" integer[] DEFAULT '{50,75,90,100}' NOT NULL,
	"hard_limit_action" text DEFAULT 'block' NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_by" text,
	CONSTRAINT "spending_limits_unit_check" CHECK ("spending_limits"."unit" in ('currency', 'credits')),
	CONSTRAINT "spending_limits_hard_limit_action_check" CHECK ("spending_limits"."hard_limit_action" in ('block', 'alert'))
);
--> statement-breakpoint
ALTER TABLE "alerts" ADD CONSTRAINT "alerts_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_accounts" ADD CONSTRAINT "credit_accounts_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_entries" ADD CONSTRAINT "credit_entries_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_grants" ADD CONSTRAINT "credit_grants_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "credit_periods" ADD CONSTRAINT "credit_periods_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "spending_limits" ADD CONSTRAINT "spending_limits_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alerts_org_id_created_at_idx" ON "alerts" USING btree ("org_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "credit_entries_reverses_id_key" ON "credit_entries" USING btree ("reverses_id") WHERE "credit_entries"."reverses_id" is not null;--> statement-breakpoint
CREATE INDEX "credit_entries_org_id_id_idx" ON "credit_entries" USING btree ("org_id","id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "credit_entries_org_id_created_at_idx" ON "credit_entries" USING btree ("org_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "credit_grants_org_id_reference_key" ON "credit_grants" USING btree ("org_id","reference") WHERE "credit_grants"."reference" is not null;--> statement-breakpoint
CREATE UNIQUE INDEX "credit_grants_org_id_period_start_key" ON "credit_grants" USING btree ("org_id","period_start") WHERE "credit_grants"."source" = 'plan_allocation';--> statement-breakpoint
CREATE INDEX "credit_grants_live_idx" ON "credit_grants" USING btree ("org_id") WHERE "credit_grants"."closed_at" is null;--> statement-breakpoint
CREATE INDEX "credit_grants_expires_at_idx" ON "credit_grants" USING btree ("expires_at") WHERE "credit_grants"."closed_at" is null;