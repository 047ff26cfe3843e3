-- Privileges of the two roles (created by provision.py; roles are cluster-wide).
--   revenueos_service: what the app, the traffic and the workers write with; stands in for
--                      Supabase's service_role (BYPASSRLS, everything).
--   checks_ro:         what the checks read with: SELECT, nothing else. It reads
--                      pg_stat_user_tables like any role.
-- Re-runnable: heal of dunning_table_missing runs it again.

REVOKE ALL ON DATABASE revenueos FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE revenueos TO revenueos_service;
GRANT CONNECT ON DATABASE revenueos TO checks_ro;

GRANT USAGE ON SCHEMA public, auth TO revenueos_service;
GRANT ALL ON ALL TABLES IN SCHEMA public, auth TO revenueos_service;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public, auth TO revenueos_service;

GRANT USAGE ON SCHEMA public TO checks_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO checks_ro;
