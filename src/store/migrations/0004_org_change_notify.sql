-- Every change to what authorizing a key depends on (the key, its organization and project, the rate-limit
-- overrides, the subscription) signals the organization's id on `orgplane_org_changes`. A trigger fires in
-- the changing transaction, and PostgreSQL delivers the notification when (and only if) it commits: each
-- process's listener then drops what it cached of that organization. TG_ARGV[0] names the column holding
-- the organization's id; TG_ARGV[1], if given, a column whose changes alone are not worth a signal. A new
-- key or subscription needs no signal: nothing about it can be cached yet (unknown keys are not cached).
CREATE FUNCTION "orgplane_notify_org_change"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	ignored text := coalesce(TG_ARGV[1], '');
	org text;
BEGIN
	IF TG_OP = 'UPDATE' AND (to_jsonb(OLD) - ignored) = (to_jsonb(NEW) - ignored) THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'DELETE' THEN
		org := to_jsonb(OLD) ->> TG_ARGV[0];
	ELSE
		org := to_jsonb(NEW) ->> TG_ARGV[0];
	END IF;
	PERFORM pg_notify('orgplane_org_changes', org);
	RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER "api_keys_org_change" AFTER UPDATE OR DELETE ON "api_keys"
	FOR EACH ROW EXECUTE FUNCTION "orgplane_notify_org_change"('org_id', 'last_used_at');
--> statement-breakpoint
CREATE TRIGGER "organizations_org_change" AFTER UPDATE OR DELETE ON "organizations"
	FOR EACH ROW EXECUTE FUNCTION "orgplane_notify_org_change"('id');
--> statement-breakpoint
CREATE TRIGGER "projects_org_change" AFTER UPDATE OR DELETE ON "projects"
	FOR EACH ROW EXECUTE FUNCTION "orgplane_notify_org_change"('org_id');
--> statement-breakpoint
CREATE TRIGGER "rate_limit_overrides_org_change" AFTER INSERT OR UPDATE OR DELETE ON "rate_limit_overrides"
	FOR EACH ROW EXECUTE FUNCTION "orgplane_notify_org_change"('org_id');
--> statement-breakpoint
CREATE TRIGGER "subscriptions_org_change" AFTER UPDATE OR DELETE ON "subscriptions"
	FOR EACH ROW EXECUTE FUNCTION "orgplane_notify_org_change"('org_id');
