-- The events-partition verify RPC with its privileges, in a script of its own so that the fault
-- verify_function_missing can drop it and heal re-applies it, as runbook 002's mitigation does.
-- The watchtower RPC calls it by name at run time, so it can be created after schema.sql.

-- Only this month's events partition, by name; sessions and next month are not looked at.
CREATE OR REPLACE FUNCTION public.verify_current_events_partition_exists() RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public'
                     AND c.relname = 'events_' || to_char(now() AT TIME ZONE 'utc', 'YYYY_MM'))
$$;

REVOKE EXECUTE ON FUNCTION public.verify_current_events_partition_exists() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.verify_current_events_partition_exists()
    TO checks_ro, opsmantik_service;
