CREATE TABLE "rate_limit_overrides" (
	"org_id" text NOT NULL,
	"scope_id" text NOT NULL,
	"category" text NOT NULL,
	"requests_per_minute" integer NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "rate_limit_overrides_org_id_scope_id_category_pk" PRIMARY KEY("org_id","scope_id","category")
);
--> statement-breakpoint
ALTER TABLE "rate_limit_overrides" ADD CONSTRAINT "rate_limit_overrides_org_id_organizations_id_fk" FOREIGN KEY ("org_id") REFERENCES "public"."organizations"("id") ON DELETE no action ON UPDATE no action;